import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { taskQueueKeys, keys } from '../core/keys.js';
import { planPlacements, type SchedTask } from '../task-planner/index.js';
import { conditional, isConditionFailed, queryAll } from '../ports/store.js';
import { countTaskFinished } from '../observability/counters.js';
import { recordFinish } from './task-stats.js';
import { countTransition } from './task-counts.js';
import { recordQueueDeadline } from './queue-deadlines.js';
import { countQueueMove } from './queue-position.js';

/**
 * One task record serves both APIs: a cluster task (POST /tasks) and a vision job
 * (POST /api/vision/generate) are the same item in the same queue. Every transition is a
 * single conditional write on `status` (and the node it is on), so concurrent runners,
 * redelivered events and API calls never apply one transition twice.
 *
 *   queued ──place──> assigned ──progress──> running ──finished──> completed | failed | cancelled
 *     │  ^                │                     │
 *     │  └──requeue (node offline, restart, forced unload)
 *     └──cancel / queue timeout──> cancelled | failed
 */

export { ACTIVE, TERMINAL, type TaskItem, type TaskStatus } from './task-model.js';
import { ACTIVE, type TaskItem } from './task-model.js';

/** Finished tasks stay a little longer than the longest metrics window (30 d). */
const FINISHED_TTL_SECONDS = 31 * 24 * 3600;

export const DEFAULT_RUN_TIMEOUT_SECONDS = 600;

export interface NewTask {
  source: TaskItem['source'];
  taskType: string;
  model: string;
  parameters: Record<string, unknown>;
  priority: number;
  priorityInput: string | number;
  timeoutSeconds?: number;
  runTimeoutSeconds?: number;
  requirements?: TaskItem['requirements'];
}

export async function getTask(ctx: AppContext, taskId: string): Promise<TaskItem | undefined> {
  const k = keys.task(taskId);
  return ctx.store.get<TaskItem>(k.pk, k.sk);
}

/** Asks for a placement run; `requestedAt` lets a run that started later answer for it. */
export async function requestPlacement(ctx: AppContext, reason: string): Promise<void> {
  await emit(ctx, { type: 'placement.run', reason, requestedAt: Date.now() });
}

export async function submitTask(ctx: AppContext, input: NewTask): Promise<TaskItem> {
  const taskId = randomUUID();
  const now = ctx.now();
  const createdAt = new Date(now).toISOString();
  const item: TaskItem = {
    ...keys.task(taskId),
    ...keys.taskIndexes(taskId, createdAt),
    ...keys.queuedIndex(input.priority, createdAt, taskId),
    taskId,
    source: input.source,
    taskType: input.taskType,
    model: input.model,
    parameters: input.parameters,
    priority: input.priority,
    priorityInput: input.priorityInput,
    ...(input.requirements ? { requirements: input.requirements } : {}),
    status: 'queued',
    createdAt,
    createdAtMs: now,
    ...(input.timeoutSeconds !== undefined ? { timeoutSeconds: input.timeoutSeconds } : {}),
    runTimeoutSeconds: input.runTimeoutSeconds ?? DEFAULT_RUN_TIMEOUT_SECONDS,
    attempts: 0,
    progress: 0,
    counted: true,
    queueCounted: true,
  };
  // Its queue deadline's record beside it (queue-deadlines.ts): the scheduled run reads those, not the queue.
  await Promise.all([ctx.store.put(item, { notExists: true }), recordQueueDeadline(ctx, item)]);
  await countTransition(ctx, item, undefined, 'queued');
  await countQueueMove(ctx, item, undefined, 'queued');
  await requestPlacement(ctx, 'submitted');
  return item;
}

/** Every queued task (gsi1 QUEUE is sparse: only queued tasks carry it). */
export async function queuedTasks(ctx: AppContext): Promise<TaskItem[]> {
  return queryAll<TaskItem>(ctx.store, taskQueueKeys.queuePk, { index: 'gsi1' });
}

/**
 * The queue a page at a time in the order placement serves it (the index sorts so: keys.queuedIndex).
 * `next` reads at most `limit` more tasks; `done` once the index had no more.
 */
export function queueReader(ctx: AppContext, pageSize: number) {
  let cursor: string | undefined;
  let done = false;
  return {
    get done() {
      return done;
    },
    async next(limit = pageSize): Promise<TaskItem[]> {
      if (done) return [];
      const page = await ctx.store.query<TaskItem>(taskQueueKeys.queuePk, {
        index: 'gsi1',
        limit,
        ...(cursor ? { cursor } : {}),
      });
      cursor = page.cursor;
      done = !cursor;
      return page.items;
    },
  };
}

export const toSchedTask = (t: TaskItem): SchedTask => ({
  id: t.taskId,
  model: t.model,
  priority: t.priority,
  enqueuedAt: t.createdAtMs,
  ...(t.timeoutSeconds !== undefined ? { timeoutMs: t.timeoutSeconds * 1000 } : {}),
  ...(t.requirements
    ? {
        requirements: {
          ...(t.requirements.gpuType ? { gpuType: t.requirements.gpuType } : {}),
          ...(t.requirements.labels ? { labels: t.requirements.labels } : {}),
        },
      }
    : {}),
});

/**
 * The queue in the order the scheduler serves it (effective priority, then FIFO): planning
 * against no nodes leaves every live task in `stillQueued`, in scheduling order.
 */
export function queueOrder(queued: readonly TaskItem[], now: number): TaskItem[] {
  const byId = new Map(queued.map((t) => [t.taskId, t] as const));
  const plan = planPlacements({ nodes: [], models: [], queue: queued.map(toSchedTask), now });
  return plan.stillQueued.map((id) => byId.get(id)!);
}

/** Run timeout the agent gets: what is left of the deadline, else the default. */
export function runTimeoutFor(t: TaskItem, now: number): number {
  if (t.timeoutSeconds === undefined) return t.runTimeoutSeconds;
  return Math.max(1, Math.ceil((t.createdAtMs + t.timeoutSeconds * 1000 - now) / 1000));
}

/** When an active task counts as lost if the agent has said nothing (its own timeout plus slack). */
export function runDeadlineMs(t: TaskItem): number | undefined {
  if (t.assignedAtMs === undefined) return undefined;
  const budget =
    t.timeoutSeconds !== undefined
      ? t.createdAtMs + t.timeoutSeconds * 1000
      : t.assignedAtMs + t.runTimeoutSeconds * 1000;
  return budget + 60_000;
}

const finishedFields = (ctx: AppContext) => {
  const now = ctx.now();
  return {
    completedAt: new Date(now).toISOString(),
    completedAtMs: now,
    expiresAt: Math.floor(now / 1000) + FINISHED_TTL_SECONDS,
  };
};

/**
 * queued → assigned, with the id of the task.run command about to go out. Undefined when another
 * writer changed the task first.
 */
export async function markAssigned(
  ctx: AppContext,
  taskId: string,
  nodeId: string,
  slot: number,
  switchedModel: boolean,
  runCommandId: string,
  queue: { aloneInSecond?: boolean } = {},
): Promise<TaskItem | undefined> {
  const k = keys.task(taskId);
  const assigned = await conditional(
    ctx.store.update<TaskItem>(
      k.pk,
      k.sk,
      {
        set: {
          status: 'assigned',
          nodeId,
          slot,
          assignedAtMs: ctx.now(),
          switchedModel,
          runCommandId,
          progress: 0,
        },
        add: { attempts: 1 },
        remove: ['gsi1pk', 'gsi1sk', 'startedAt', 'startedAtMs', 'serverReadyAtMs'],
      },
      { equals: { status: 'queued' } },
    ),
  );
  if (assigned) await countTransition(ctx, assigned, 'queued', 'assigned');
  if (assigned) await countQueueMove(ctx, assigned, 'queued', 'assigned', queue);
  return assigned;
}

/** assigned|running on `nodeId` → queued again, keeping its place (priority and age). */
export async function requeue(
  ctx: AppContext,
  task: TaskItem,
  nodeId: string,
  why: string,
): Promise<TaskItem | undefined> {
  const k = keys.task(task.taskId);
  const queued = await conditional(
    ctx.store.update<TaskItem>(
      k.pk,
      k.sk,
      {
        set: {
          status: 'queued',
          progress: 0,
          ...keys.queuedIndex(task.priority, task.createdAt, task.taskId),
          requeuedFrom: [...(task.requeuedFrom ?? []), nodeId],
          lastRequeueReason: why,
        },
        remove: [
          'nodeId',
          'slot',
          'assignedAtMs',
          'runCommandId',
          'switchedModel',
          'startedAt',
          'startedAtMs',
          'serverReadyAtMs',
        ],
      },
      { equals: { status: ACTIVE, nodeId } },
    ),
  );
  if (queued) await countTransition(ctx, queued, task.status, 'queued');
  if (queued) await countQueueMove(ctx, queued, task.status, 'queued');
  return queued;
}

/** Progress from the agent; the first report marks the start. Stale nodes are ignored. */
export async function recordProgress(
  ctx: AppContext,
  task: TaskItem,
  nodeId: string,
  progress: number,
): Promise<TaskItem | undefined> {
  const now = ctx.now();
  const set: Record<string, unknown> = {
    status: 'running',
    progress: Math.max(task.status === 'running' ? task.progress : 0, progress),
  };
  if (task.startedAtMs === undefined)
    Object.assign(set, { startedAt: new Date(now).toISOString(), startedAtMs: now });
  if (task.serverReadyAtMs === undefined && progress >= 30) set.serverReadyAtMs = now;
  const k = keys.task(task.taskId);
  return conditional(ctx.store.update<TaskItem>(k.pk, k.sk, { set }, { equals: { status: ACTIVE, nodeId } }));
}

/**
 * assigned on `nodeId` → running: the first progress report. When the task is not so: `started`
 * absent and `current`, the task as stored where the store says (undefined: it does not exist).
 */
export async function markStarted(
  ctx: AppContext,
  taskId: string,
  nodeId: string,
  progress: number,
): Promise<{ started?: TaskItem; current?: TaskItem }> {
  const now = ctx.now();
  const k = keys.task(taskId);
  let started: TaskItem;
  try {
    started = await ctx.store.update<TaskItem>(
      k.pk,
      k.sk,
      {
        set: {
          status: 'running',
          progress,
          startedAt: new Date(now).toISOString(),
          startedAtMs: now,
          ...(progress >= 30 ? { serverReadyAtMs: now } : {}),
        },
      },
      { equals: { status: 'assigned', nodeId } },
    );
  } catch (error) {
    if (!isConditionFailed(error)) throw error;
    // The lost condition carries the stored item (read back where the engine does not return it).
    return { current: error.current as TaskItem | undefined };
  }
  await countTransition(ctx, started, 'assigned', 'running');
  return { started };
}

export interface Outcome {
  status: 'completed' | 'failed' | 'cancelled';
  result?: Record<string, unknown>;
  error?: string;
  outputs?: string[];
}

/** assigned|running on `nodeId` → terminal. */
export async function markFinished(
  ctx: AppContext,
  task: TaskItem,
  nodeId: string,
  outcome: Outcome,
): Promise<TaskItem | undefined> {
  const k = keys.task(task.taskId);
  const now = ctx.now();
  const finished = await conditional(
    ctx.store.update<TaskItem>(
      k.pk,
      k.sk,
      {
        set: {
          status: outcome.status,
          ...finishedFields(ctx),
          ...(task.startedAtMs === undefined
            ? { startedAt: new Date(now).toISOString(), startedAtMs: now }
            : {}),
          ...(outcome.status === 'completed' ? { progress: 100 } : {}),
          ...(outcome.result !== undefined ? { result: outcome.result } : {}),
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
          ...(outcome.outputs?.length ? { outputs: outcome.outputs } : {}),
        },
      },
      { equals: { status: ACTIVE, nodeId } },
    ),
  );
  if (finished) await countTransition(ctx, finished, task.status, finished.status);
  if (finished)
    await countTaskFinished(ctx, outcome.status, Math.max(0, (now - task.createdAtMs) / 1000)).catch(
      (error: unknown) =>
        ctx.logger.warn('task count failed', { taskId: task.taskId, error: error as Error }),
    );
  // Wait estimates, worker figures and /cluster/metrics read these, not the tasks (task-stats.ts).
  if (finished) await recordFinish(ctx, finished);
  return finished;
}

/** queued → failed or cancelled (never placed). */
export async function closeQueued(
  ctx: AppContext,
  taskId: string,
  status: 'failed' | 'cancelled',
  error?: string,
): Promise<TaskItem | undefined> {
  const k = keys.task(taskId);
  const closed = await conditional(
    ctx.store.update<TaskItem>(
      k.pk,
      k.sk,
      { set: { status, ...finishedFields(ctx), ...(error ? { error } : {}) }, remove: ['gsi1pk', 'gsi1sk'] },
      { equals: { status: 'queued' } },
    ),
  );
  if (closed) await countTransition(ctx, closed, 'queued', status);
  if (closed) await recordFinish(ctx, closed);
  if (closed) await countQueueMove(ctx, closed, 'queued', status);
  return closed;
}

/**
 * assigned|running → cancelled at once (the API answers `cancelled`); the node keeps its slot
 * until the agent confirms, so nothing else starts on a GPU that is still busy.
 */
export async function markCancelledWhileActive(
  ctx: AppContext,
  task: TaskItem,
): Promise<TaskItem | undefined> {
  const k = keys.task(task.taskId);
  const cancelled = await conditional(
    ctx.store.update<TaskItem>(
      k.pk,
      k.sk,
      { set: { status: 'cancelled', error: 'cancelled', ...finishedFields(ctx) } },
      { equals: { status: ACTIVE, nodeId: task.nodeId } },
    ),
  );
  if (cancelled) await countTransition(ctx, cancelled, task.status, 'cancelled');
  if (cancelled) await recordFinish(ctx, cancelled);
  return cancelled;
}
