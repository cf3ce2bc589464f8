import * as z from 'zod';
import { emit, type AreaEventHandlers, type AreaEvents } from '../core/events.js';
import { keys } from '../core/keys.js';
import { getCommand } from '../nodes/commands.js';
import type { InstanceItem } from '../orchestrator/model.js';
import type { AppContext } from '../core/context.js';
import {
  gpuAlert,
  modelLoaded,
  rebalanceStarted,
  taskFinished,
  workerStatusChanged,
} from './cluster-stream.js';
import { onContainerOutput } from './output.js';
import { notifyNodeLog, pushPeriodic, sendSnapshot } from './session.js';
import { pushShard } from './push.js';

/** A container's name for a log line: from its command, else its instance record, else its id. */
async function containerName(
  ctx: AppContext,
  instanceId: string | undefined,
  commandId?: string,
): Promise<string> {
  if (commandId) {
    const cmd = await getCommand(ctx, commandId).catch(() => undefined);
    if (cmd?.command.type === 'container.start')
      return `${cmd.command.spec.name} (${cmd.command.spec.imageId})`;
  }
  if (!instanceId) return 'container';
  const k = keys.instance(instanceId);
  const inst = await ctx.store.get<InstanceItem>(k.pk, k.sk).catch(() => undefined);
  return inst ? `${inst.name} (${inst.imageId})` : instanceId;
}

const KIND_LABEL: Record<string, string> = {
  service: 'Container',
  run: 'Job run container',
  model: 'Model server container',
};

/**
 * The `/ws/logs` producers: the happenings the control plane already records as events (agent
 * events, command results, online/offline transitions), as log lines of their node. Each only
 * pushes (never throws); the domain handlers of the same types run before it.
 */
/** The live push (AWS: the minute schedule runs it, functions/minute.ts): metrics and doctor frames to every subscriber. `budget`: records an invocation reads (push.ts). */
export const wsPush = z.looseObject({ budget: z.number().int().positive().optional() });
/** One link of a push that outgrew one invocation: a shard from `cursor` (push.ts). */
export const wsPushShard = z.object({
  shard: z.number().int().nonnegative(),
  cursor: z.string().optional(),
  link: z.number().int().nonnegative(),
  at: z.number(),
  channels: z.array(z.enum(['metrics', 'doctor'])).min(1),
  to: z.string().min(1).optional(),
  budget: z.number().int().positive(),
});
/** Sent by `$connect` on AWS, delayed: the first frame of a new connection. */
export const wsConnected = z.object({ connectionId: z.string().min(1) });

export const realtimeEvents = {
  'ws.push': wsPush,
  'ws.push.shard': wsPushShard,
  'ws.connected': wsConnected,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    'ws.push': typeof wsPush;
    'ws.push.shard': typeof wsPushShard;
    'ws.connected': typeof wsConnected;
  }
}

export const realtimeEventHandlers: AreaEventHandlers = {
  'agent.container.output': onContainerOutput,
  'node.registered': async (e, ctx) => {
    await notifyNodeLog(ctx, e.nodeId, 'info', `Node ${e.nodeName || e.nodeId} registered`);
    await workerStatusChanged(ctx, e.nodeId, 'online', null);
  },
  'node.online': async (e, ctx) => {
    await notifyNodeLog(ctx, e.nodeId, 'info', 'Node came online');
    await workerStatusChanged(ctx, e.nodeId, 'online', 'offline');
  },
  'node.offline': async (e, ctx) => {
    const last = e.lastHeartbeat;
    await notifyNodeLog(
      ctx,
      e.nodeId,
      'warning',
      `Node went offline${last ? ` (last heartbeat ${last})` : ''}`,
    );
    await workerStatusChanged(ctx, e.nodeId, 'offline', 'online', last);
  },
  'node.gpu.alert': async (e, ctx) => {
    await notifyNodeLog(
      ctx,
      e.nodeId,
      'warning',
      `GPU temperature at or above ${e.thresholdC} °C: ${e.gpus.map((g) => `${g.label} ${Math.round(g.temperatureC)} °C`).join(', ')}`,
    );
    await gpuAlert(ctx, e);
  },
  'node.model.loaded': async (e, ctx) => {
    await notifyNodeLog(ctx, e.nodeId, 'info', `Model ${e.model} loaded`);
    await modelLoaded(ctx, e);
  },
  'cluster.rebalance.started': async (e, ctx) => rebalanceStarted(ctx, e),
  'command.completed': async (e, ctx) => {
    const nodeId = e.nodeId;
    const ok = e.status === 'succeeded';
    const error = e.error;
    const failed = (what: string | (() => Promise<string>)) =>
      notifyNodeLog(ctx, nodeId, 'error', async () => {
        const text = typeof what === 'string' ? what : await what();
        return `${text} failed${error ? `: ${error}` : ''}`;
      });
    const instanceId = e.instanceId;
    const commandId = e.commandId;
    switch (e.commandType) {
      case 'container.start': {
        const name = await containerName(ctx, instanceId, commandId);
        return ok
          ? notifyNodeLog(ctx, nodeId, 'info', `Container ${name} started`)
          : failed(`Starting container ${name}`);
      }
      case 'container.stop':
      case 'container.remove':
      case 'container.restart':
      case 'container.update': {
        const verb = {
          'container.stop': 'stopped',
          'container.remove': 'removed',
          'container.restart': 'restarted',
          'container.update': 'updated',
        }[e.commandType];
        const name = await containerName(ctx, instanceId);
        return ok
          ? notifyNodeLog(ctx, nodeId, 'info', `Container ${name} ${verb}`)
          : failed(`Container ${name} ${e.commandType.slice(10)}`);
      }
      case 'task.run': {
        // The command is read only when the node's log stream has a listener.
        const task = async () => {
          const cmd = commandId ? await getCommand(ctx, commandId).catch(() => undefined) : undefined;
          return cmd?.command.type === 'task.run'
            ? `Task ${cmd.command.taskId} (model ${cmd.command.model})`
            : 'Task';
        };
        return ok ? notifyNodeLog(ctx, nodeId, 'info', async () => `${await task()} started`) : failed(task);
      }
      default:
        return undefined; // logs reads and cancels are not lifecycle happenings
    }
  },
  'agent.container.exited': async (e, ctx) => {
    const code = e.exitCode;
    const name = await containerName(ctx, e.instanceId);
    const label = KIND_LABEL[e.kind] ?? 'Container';
    await notifyNodeLog(
      ctx,
      e.nodeId,
      code === 0 ? 'info' : 'error',
      `${label} ${name} exited ${code === null ? '(no exit code)' : `with code ${code}`}`,
    );
  },
  'agent.task.finished': async (e, ctx) => {
    const status = e.status;
    const error = e.error;
    await notifyNodeLog(
      ctx,
      e.nodeId,
      status === 'completed' ? 'info' : status === 'cancelled' ? 'warning' : 'error',
      `Task ${e.taskId} ${status}${error ? `: ${error}` : ''}`,
    );
    await taskFinished(ctx, e);
  },
  /** Off Lambda the local runtime's timer pushes instead, more often. */
  'ws.push': async (e, ctx) => {
    if (ctx.mode !== 'lambda') return;
    await pushPeriodic(ctx, e.budget).catch((error: unknown) =>
      ctx.logger.warn('websocket push failed', { error: error as Error }),
    );
  },
  /** A link of a push that outgrew one invocation, in either runtime. Never throws: a push is not redelivered. */
  'ws.push.shard': async (e, ctx) => {
    const { type: _type, ...link } = e;
    try {
      const { next } = await pushShard(ctx, link);
      if (next) await emit(ctx, { type: 'ws.push.shard', ...next });
    } catch (error) {
      ctx.logger.warn('websocket push failed', { shard: e.shard, error: error as Error });
    }
  },
  'ws.connected': async (e, ctx) => {
    const connectionId = e.connectionId;
    await sendSnapshot(ctx, connectionId).catch((error: unknown) =>
      ctx.logger.warn('websocket snapshot failed', { connectionId, error: error as Error }),
    );
  },
};
