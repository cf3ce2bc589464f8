/**
 * Run-time statistics of completed tasks, kept as counters so that a wait estimate reads a few
 * small records instead of every task of the last day. One record per UTC day and shard
 * (`TASKSTATS#<shard>` / `<yyyy-mm-dd>`), updated with ADD by each completion: fleet-wide count and
 * seconds, and the same per model. A completion picks its shard at random, so no partition key
 * takes more than 1/TASK_STATS_SHARDS of the fleet's completions (1,000 writes/s each).
 */
import type { AppContext } from '../core/context.js';
import { statsKeys } from '../core/keys.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import type { TaskItem } from './task-model.js';

export const TASK_STATS_SHARDS = 8;
const SHARDS = Array.from({ length: TASK_STATS_SHARDS }, (_, i) => i);
const DAY_MS = 86_400_000;
/** Records outlive the two days a reader looks at. */
const TTL_SECONDS = 3 * 86_400;

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const taskStatsKey = (shard: number, dayKey: string) => ({ pk: `TASKSTATS#${shard}`, sk: dayKey });

interface TaskStatsItem extends StoreItem {
  count?: number;
  seconds?: number;
  [field: string]: unknown;
}

const countField = (model: string) => `count:${model}`;
const secondsField = (model: string) => `seconds:${model}`;

/** One write unit a completed task. */
export async function recordCompletion(ctx: AppContext, model: string, seconds: number): Promise<void> {
  const now = ctx.now();
  const shard = Math.floor(Math.random() * TASK_STATS_SHARDS);
  const k = taskStatsKey(shard, day(now));
  await ctx.store.update(
    k.pk,
    k.sk,
    {
      set: { expiresAt: Math.floor(now / 1000) + TTL_SECONDS },
      add: { count: 1, seconds, [countField(model)]: 1, [secondsField(model)]: seconds },
    },
    // No condition: the first completion of the day creates the record.
    {},
  );
}

export interface Durations {
  perModel: Map<string, number>;
  fleet: number | null;
}

/** Mean run seconds per model and fleet-wide over today and yesterday (UTC). */
export async function readDurations(ctx: AppContext): Promise<Durations> {
  const now = ctx.now();
  const items = (
    await Promise.all(
      SHARDS.map((s) =>
        queryAll<TaskStatsItem>(ctx.store, taskStatsKey(s, '').pk, {
          between: [day(now - DAY_MS), day(now)],
        }),
      ),
    )
  ).flat();
  let count = 0;
  let seconds = 0;
  const perCount = new Map<string, number>();
  const perSeconds = new Map<string, number>();
  for (const item of items) {
    count += item.count ?? 0;
    seconds += item.seconds ?? 0;
    for (const [field, value] of Object.entries(item)) {
      if (typeof value !== 'number') continue;
      if (field.startsWith('count:'))
        perCount.set(field.slice(6), (perCount.get(field.slice(6)) ?? 0) + value);
      if (field.startsWith('seconds:'))
        perSeconds.set(field.slice(8), (perSeconds.get(field.slice(8)) ?? 0) + value);
    }
  }
  const perModel = new Map<string, number>();
  for (const [model, n] of perCount) if (n > 0) perModel.set(model, (perSeconds.get(model) ?? 0) / n);
  return { perModel, fleet: count > 0 ? seconds / count : null };
}

/**
 * Finished tasks by the hour, so that a worker's figures and `/cluster/metrics` read a few small
 * records instead of every task of their window. A finish adds to its node's hour record
 * (`NODESTATS#<nodeId>`, one partition a node: no hotter than the node) and to the fleet's minute
 * and hour records of a random one of 8 shards (`TASKRATE#<shard>`), like the counters above.
 * Fields: `completed`, `failed`, `cancelled`; `respMs` (created → finished, completed tasks),
 * `runMs` (started → finished, completed, node records); `c<MM>` the completions of minute MM of
 * the hour (peaks and "the last hour"); `u:<model>` when the node last finished a task of the
 * model; `l:<model>` how long the model's server took to answer after a switch, in seconds.
 */
export interface StatsBucket extends StoreItem {
  completed?: number;
  failed?: number;
  cancelled?: number;
  respMs?: number;
  runMs?: number;
  [field: string]: unknown;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** A node's hours outlive the 24 hours read; the fleet's the 30 days of the longest timeframe. */
const NODE_TTL_SECONDS = 2 * 86_400;
const FLEET_HOUR_TTL_SECONDS = 32 * 86_400;
const FLEET_MINUTE_TTL_SECONDS = 3 * 3_600;
/** A window up to this long is read by the minute. */
const BY_MINUTE_MS = 2 * HOUR_MS;

const minuteField = (ms: number) => `c${new Date(ms).toISOString().slice(14, 16)}`;
const num = (v: unknown) => (typeof v === 'number' ? v : 0);

/**
 * Records one finished task (completed, failed or cancelled): 3 writes of one unit, plus the
 * day's run-time counter for a completion. Failures are logged, never thrown: the task's own
 * write has happened.
 */
export async function recordFinish(ctx: AppContext, task: TaskItem): Promise<void> {
  const outcome = task.status;
  if (outcome !== 'completed' && outcome !== 'failed' && outcome !== 'cancelled') return;
  const now = task.completedAtMs ?? ctx.now();
  const done = outcome === 'completed';
  const counts: Record<string, number> = {
    [outcome]: 1,
    ...(done ? { respMs: Math.max(0, now - task.createdAtMs) } : {}),
  };
  const perMinute = done ? { [minuteField(now)]: 1 } : {};
  const runMs = done && task.startedAtMs !== undefined ? Math.max(0, now - task.startedAtMs) : undefined;
  const expires = (seconds: number) => ({ expiresAt: Math.floor(now / 1000) + seconds });
  const shard = Math.floor(Math.random() * TASK_STATS_SHARDS);
  const minute = statsKeys.fleetMinute(shard, now);
  const hour = statsKeys.fleetHour(shard, now);
  // No condition: the first finish of a minute or hour creates its record.
  const writes: Promise<unknown>[] = [
    ctx.store.update(minute.pk, minute.sk, { set: expires(FLEET_MINUTE_TTL_SECONDS), add: counts }, {}),
    ctx.store.update(
      hour.pk,
      hour.sk,
      { set: expires(FLEET_HOUR_TTL_SECONDS), add: { ...counts, ...perMinute } },
      {},
    ),
  ];
  if (task.nodeId !== undefined) {
    const node = statsKeys.nodeHour(task.nodeId, now);
    const loadS =
      task.switchedModel && task.serverReadyAtMs !== undefined && task.startedAtMs !== undefined
        ? (task.serverReadyAtMs - task.startedAtMs) / 1000
        : undefined;
    writes.push(
      ctx.store.update(
        node.pk,
        node.sk,
        {
          set: {
            ...expires(NODE_TTL_SECONDS),
            [`u:${task.model}`]: now,
            ...(loadS !== undefined ? { [`l:${task.model}`]: loadS } : {}),
          },
          add: { ...counts, ...perMinute, ...(runMs !== undefined ? { runMs } : {}) },
        },
        {},
      ),
    );
  }
  // Wait estimates read these day counters, not the tasks.
  if (runMs !== undefined) writes.push(recordCompletion(ctx, task.model, runMs / 1000));
  try {
    await Promise.all(writes);
  } catch (error) {
    ctx.logger.warn('task stats failed', { taskId: task.taskId, error: error as Error });
  }
}

/** A node's hour records of the last 24 hours (the current hour and the 23 before): one query. */
export async function readNodeHours(ctx: AppContext, nodeId: string): Promise<StatsBucket[]> {
  const now = ctx.now();
  return queryAll<StatsBucket>(ctx.store, statsKeys.nodePk(nodeId), {
    between: [statsKeys.hourSk(now - 23 * HOUR_MS), statsKeys.hourSk(now)],
  });
}

export interface FleetFinished {
  completed: number;
  failed: number;
  cancelled: number;
  /** Mean seconds from creation to completion of the tasks completed. */
  responseS: number | null;
  /** Completions in the busiest minute. */
  peakPerMinute: number;
}

/**
 * Tasks the fleet finished in the `windowMs` ending now: by the minute (the current one and those
 * before) up to 2 hours, else by the hour; 8 queries of one partition each, whatever the tasks.
 */
export async function readFleetFinished(ctx: AppContext, windowMs: number): Promise<FleetFinished> {
  const now = ctx.now();
  const byMinute = windowMs <= BY_MINUTE_MS;
  const between: [string, string] = byMinute
    ? [statsKeys.minuteSk(now - windowMs + MINUTE_MS), statsKeys.minuteSk(now)]
    : [statsKeys.hourSk(now - windowMs + HOUR_MS), statsKeys.hourSk(now)];
  const items = (
    await Promise.all(SHARDS.map((s) => queryAll<StatsBucket>(ctx.store, statsKeys.fleetPk(s), { between })))
  ).flat();
  let completed = 0;
  let failed = 0;
  let cancelled = 0;
  let respMs = 0;
  // Completions per minute, summed over the shards.
  const perMinute = new Map<string, number>();
  const add = (k: string, v: number) => perMinute.set(k, (perMinute.get(k) ?? 0) + v);
  for (const item of items) {
    completed += num(item.completed);
    failed += num(item.failed);
    cancelled += num(item.cancelled);
    respMs += num(item.respMs);
    if (byMinute) add(item.sk, num(item.completed));
    else
      for (const [field, value] of Object.entries(item))
        if (/^c\d\d$/.test(field)) add(`${item.sk}${field}`, num(value));
  }
  return {
    completed,
    failed,
    cancelled,
    responseS: completed ? respMs / completed / 1000 : null,
    peakPerMinute: perMinute.size ? Math.max(...perMinute.values()) : 0,
  };
}
