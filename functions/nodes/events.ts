import * as z from 'zod';
import type { AreaEvents } from '../core/events.js';
import { COMMAND_TYPES, type CommandType } from '../../protocol/commands.js';

/**
 * The events nodes give rise to, produced by registration, heartbeats, the sweep and the agent
 * routes, and consumed by several areas (orchestrator, task queue, training, WebSocket logs).
 */
const nodeId = z.string().min(1);
const commandType = z.enum(COMMAND_TYPES as [CommandType, ...CommandType[]]);

export const nodeRegistered = z.object({ nodeId, nodeName: z.string() });
export const nodeOnline = z.object({ nodeId });
export const nodeOffline = z.object({ nodeId, lastHeartbeat: z.string().optional() });
/** A command's first result report. `output` is left empty (`outputOmitted`) past 16 KB. */
export const commandCompleted = z.object({
  commandId: z.string(),
  nodeId,
  commandType,
  status: z.enum(['succeeded', 'failed']),
  instanceId: z.string().optional(),
  output: z.record(z.string(), z.unknown()).default({}),
  outputOmitted: z.boolean().optional(),
  error: z.string().optional(),
});
/** The agent's events, forwarded by POST /agent/events with the node that sent them. */
export const agentContainerExited = z.object({
  nodeId,
  instanceId: z.string(),
  kind: z.enum(['service', 'run', 'model']),
  exitCode: z.number().int().nullable(),
  logTail: z.string().default(''),
  at: z.string(),
});
/** New output lines of a followed container (container.follow), for its `/ws/logs` subscribers. */
export const agentContainerOutput = z.object({
  nodeId,
  instanceId: z.string(),
  lines: z.array(z.string()),
  dropped: z.number().int().min(0).default(0),
  at: z.string(),
});
export const agentTaskProgress = z.object({
  nodeId,
  taskId: z.string(),
  progress: z.number().min(0).max(100),
  at: z.string(),
});
/** `files` come inline (base64) or, for large events, already in blobs (`blobKey`) put there by the agent routes. */
export const agentTaskFinished = z.object({
  nodeId,
  taskId: z.string(),
  status: z.enum(['completed', 'failed', 'cancelled']),
  result: z.record(z.string(), z.unknown()).optional(),
  error: z.string().optional(),
  files: z
    .array(
      z.union([
        z.object({ name: z.string(), contentType: z.string(), base64: z.string() }),
        z.object({
          name: z.string(),
          contentType: z.string(),
          blobKey: z.string(),
          size: z.number().optional(),
        }),
      ]),
    )
    .default([]),
  /** The run it ends (agents before it name none). */
  runCommandId: z.string().optional(),
  at: z.string(),
});

/** A GPU of the node crossed the temperature threshold (once per crossing, from its heartbeat). */
export const nodeGpuAlert = z.object({
  nodeId,
  thresholdC: z.number(),
  gpus: z.array(
    z.object({ label: z.string(), temperatureC: z.number(), index: z.number().int().optional() }),
  ),
});
/** A model server the node's heartbeat reports loaded for the first time. */
export const nodeModelLoaded = z.object({ nodeId, model: z.string() });

export const fleetEvents = {
  'node.gpu.alert': nodeGpuAlert,
  'node.model.loaded': nodeModelLoaded,
  'node.registered': nodeRegistered,
  'node.online': nodeOnline,
  'node.offline': nodeOffline,
  'command.completed': commandCompleted,
  'agent.container.exited': agentContainerExited,
  'agent.container.output': agentContainerOutput,
  'agent.task.progress': agentTaskProgress,
  'agent.task.finished': agentTaskFinished,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    'node.gpu.alert': typeof nodeGpuAlert;
    'node.model.loaded': typeof nodeModelLoaded;
    'node.registered': typeof nodeRegistered;
    'node.online': typeof nodeOnline;
    'node.offline': typeof nodeOffline;
    'command.completed': typeof commandCompleted;
    'agent.container.exited': typeof agentContainerExited;
    'agent.container.output': typeof agentContainerOutput;
    'agent.task.progress': typeof agentTaskProgress;
    'agent.task.finished': typeof agentTaskFinished;
  }
}
