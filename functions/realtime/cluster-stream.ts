import type { AppContext } from '../core/context.js';
import type { AppEvent } from '../core/events.js';
import { formatDuration } from '../cluster/format.js';
import { getTask } from '../cluster/tasks.js';
import { getNode } from '../nodes/nodes.js';
import { broadcast, channelKey } from './connections.js';

/**
 * The Cluster Manager's `/ws` stream: its documented events, each `{event, timestamp, data}`,
 * built from the internal events that feed the other channels.
 */
export const CLUSTER_STREAM_EVENTS = [
  'worker_status_changed',
  'task_completed',
  'task_failed',
  'cluster_rebalance_started',
  'model_loaded',
  'gpu_alert',
] as const;
export type ClusterStreamEvent = (typeof CLUSTER_STREAM_EVENTS)[number];

export interface ClusterFrame {
  event: ClusterStreamEvent | 'connected';
  timestamp: string;
  data: Record<string, unknown>;
}

const frame = (
  ctx: AppContext,
  event: ClusterFrame['event'],
  data: Record<string, unknown>,
): ClusterFrame => ({
  event,
  timestamp: new Date(ctx.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  data,
});

/** The first frame: which events this stream carries. */
export const clusterHello = (ctx: AppContext): ClusterFrame =>
  frame(ctx, 'connected', { events: [...CLUSTER_STREAM_EVENTS] });

/** Never throws: a push must not fail (and redeliver) the event it reports. */
async function publish(
  ctx: AppContext,
  event: ClusterStreamEvent,
  data: () => Promise<Record<string, unknown>>,
) {
  try {
    await broadcast(ctx, channelKey({ channel: 'cluster' }), async () => frame(ctx, event, await data()));
  } catch (error) {
    ctx.logger.warn('cluster stream push failed', { event, error: error as Error });
  }
}

const workerName = async (ctx: AppContext, nodeId: string) =>
  (await getNode(ctx, nodeId))?.nodeName ?? nodeId;

/** `previous_status` null: a registration (a new worker, or one that registered again). */
export const workerStatusChanged = (
  ctx: AppContext,
  nodeId: string,
  status: 'online' | 'offline',
  previous: 'online' | 'offline' | null,
  lastHeartbeat?: string,
) =>
  publish(ctx, 'worker_status_changed', async () => ({
    worker_id: nodeId,
    worker_name: await workerName(ctx, nodeId),
    status,
    previous_status: previous,
    ...(lastHeartbeat ? { last_heartbeat: lastHeartbeat } : {}),
  }));

/** `task_completed` or `task_failed` (a cancel included), with the run time the task record holds. */
export async function taskFinished(ctx: AppContext, e: AppEvent<'agent.task.finished'>): Promise<void> {
  const event: ClusterStreamEvent = e.status === 'completed' ? 'task_completed' : 'task_failed';
  await publish(ctx, event, async () => {
    const task = await getTask(ctx, e.taskId);
    const started = task?.startedAtMs ?? task?.assignedAtMs;
    const ended = task?.completedAtMs;
    const seconds = started !== undefined && ended !== undefined ? (ended - started) / 1000 : undefined;
    return {
      task_id: e.taskId,
      worker_id: e.nodeId,
      ...(task ? { model: task.model } : {}),
      duration: formatDuration(seconds),
      success: e.status === 'completed',
      ...(e.status !== 'completed' ? { status: e.status, error: e.error ?? e.status } : {}),
    };
  });
}

export const rebalanceStarted = (ctx: AppContext, e: AppEvent<'cluster.rebalance.started'>) =>
  publish(ctx, 'cluster_rebalance_started', async () => ({
    rebalance_id: e.rebalanceId,
    strategy: e.strategy,
    affected_workers: e.affectedWorkers,
    operations: e.operations,
  }));

export const modelLoaded = (ctx: AppContext, e: AppEvent<'node.model.loaded'>) =>
  publish(ctx, 'model_loaded', async () => ({
    worker_id: e.nodeId,
    worker_name: await workerName(ctx, e.nodeId),
    model: e.model,
  }));

export const gpuAlert = (ctx: AppContext, e: AppEvent<'node.gpu.alert'>) =>
  publish(ctx, 'gpu_alert', async () => ({
    worker_id: e.nodeId,
    worker_name: await workerName(ctx, e.nodeId),
    alert: 'gpu_temperature',
    threshold_celsius: e.thresholdC,
    gpus: e.gpus.map((g) => ({
      ...(g.index !== undefined ? { gpu_index: g.index } : {}),
      label: g.label,
      temperature_celsius: g.temperatureC,
    })),
  }));
