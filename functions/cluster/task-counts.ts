/**
 * How many tasks are in each state, kept as counters so that a queue length, a queue depth by
 * priority or model, or a listing's `total` reads a few small records instead of the tasks.
 *
 * Each transition in tasks.ts that wins its conditional write adds to one record of a random
 * shard (`TASKCOUNT#<0-7>`), so no partition key takes more than an eighth of the fleet's
 * transitions; a reader sums the shards (8 queries of one partition each, a few items).
 *  - `LIVE`: tasks queued (in all, by model, priority and task type), active (assigned or
 *    running) and running (in all and by task type): +1 in, -1 out.
 *  - `DAY#<yyyy-mm-dd>`: tasks finished that UTC day by outcome (and by task type). Finished tasks
 *    are deleted by TTL 31 days after they finish, so the records of the last 31 days count the
 *    finished tasks still stored (to within the day at that edge), and expire themselves after.
 * "The last 24 hours" reads the fleet's hour records of task-stats.ts (`TASKRATE#<shard>`), which
 * count the same finishes by outcome: no hour record of its own here.
 * Whether an active task leaving was assigned or running is what the caller read of it: a race
 * with its first progress report can move one count between the two (active stays exact).
 * The counter write follows the task's write; a process that dies between the two leaves a count
 * one off (clamped at zero when read) until recountQueued puts the queued counts right. Only tasks
 * submitted with the counters (`counted`) move them: tasks a deployment stored before are left
 * out of the counts until they are gone.
 */
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import { queryAll, updateIf, type StoreItem } from '../ports/store.js';
import type { TaskItem, TaskStatus } from './task-model.js';
import { readFleetFinished } from './task-stats.js';

export const TASK_COUNT_SHARDS = 8;
const SHARDS = Array.from({ length: TASK_COUNT_SHARDS }, (_, i) => i);
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** How long finished tasks stay (tasks.ts FINISHED_TTL_SECONDS), in days. */
const FINISHED_DAYS = 31;

export const taskCountPk = (shard: number) => `TASKCOUNT#${shard}`;
// Sort order: DAY# < LIVE, so one range reads the days and LIVE.
const LIVE_SK = 'LIVE';
/** LIVE field summing the counted transitions into and out of the queue. */
const MOVES = 'queuedMoves';
const dayKey = (ms: number) => 'DAY#' + new Date(ms).toISOString().slice(0, 10);

type Counted = Pick<TaskItem, 'model' | 'priority' | 'taskType' | 'counted'>;
const FINISHED = ['completed', 'failed', 'cancelled'] as const;
type Finished = (typeof FINISHED)[number];
const isFinished = (s: TaskStatus): s is Finished => (FINISHED as readonly string[]).includes(s);

function live(status: TaskStatus, t: Counted, delta: number): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (field: string) => {
    out[field] = delta;
    out[`${field}:t:${t.taskType}`] = delta;
  };
  if (status === 'queued') {
    add('queued');
    out[`queued:m:${t.model}`] = delta;
    out[`queued:p:${t.priority}`] = delta;
  } else if (status === 'assigned') add('active');
  else if (status === 'running') {
    add('active');
    add('running');
  }
  return out;
}

/**
 * Counts one transition (`from` undefined: a new task; else its status as the caller knew it).
 * Failures are logged, never thrown: the task's own write has happened.
 */
export async function countTransition(
  ctx: AppContext,
  task: Counted,
  from: TaskStatus | undefined,
  to: TaskStatus,
): Promise<void> {
  // A task stored before the counters existed was never added: moving it would put them off for good.
  if (!task.counted) return;
  const now = ctx.now();
  const shard = Math.floor(Math.random() * TASK_COUNT_SHARDS);
  const pk = taskCountPk(shard);
  const delta: Record<string, number> = {};
  for (const [f, v] of Object.entries(from ? live(from, task, -1) : {})) delta[f] = (delta[f] ?? 0) + v;
  for (const [f, v] of Object.entries(live(to, task, 1))) delta[f] = (delta[f] ?? 0) + v;
  for (const f of Object.keys(delta)) if (delta[f] === 0) delete delta[f];
  // Tells recountQueued the queue moved (this field is no count: sum() leaves it out).
  if ((from === 'queued') !== (to === 'queued')) delta[MOVES] = 1;
  try {
    // No condition: the first transition creates each record. The writes are independent.
    const expires = (days: number) => ({ expiresAt: Math.floor(now / 1000) + days * 86_400 });
    await Promise.all([
      Object.keys(delta).length ? ctx.store.update(pk, LIVE_SK, { add: delta }, {}) : undefined,
      ...(isFinished(to)
        ? [
            ctx.store.update(
              pk,
              dayKey(now),
              { set: expires(FINISHED_DAYS + 2), add: { [to]: 1, [`${to}:t:${task.taskType}`]: 1 } },
              {},
            ),
          ]
        : []),
    ]);
  } catch (error) {
    ctx.logger.warn('task count failed', { from, to, error: error as Error });
  }
}

export type StatusCounts = Record<TaskStatus, number>;

export interface TaskCounts {
  /** Tasks in each status (finished ones: of the last 31 days, which is what is stored). */
  states: StatusCounts;
  /** The same by task type. */
  byType: Map<string, StatusCounts>;
  /** Queued tasks by model. */
  queuedByModel: Map<string, number>;
  /** Queued tasks by normalised priority. */
  queuedByPriority: Map<number, number>;
}

const zero = (): StatusCounts => ({
  queued: 0,
  assigned: 0,
  running: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
});

/** Raw sums: `active` carries assigned + running until `settle`. */
type Raw = StatusCounts & { active: number };
const rawZero = (): Raw => ({ ...zero(), active: 0 });
const FIELDS = ['queued', 'active', 'running', ...FINISHED] as const;

function settle(r: Raw): StatusCounts {
  const active = Math.max(0, r.active);
  const running = Math.min(active, Math.max(0, r.running));
  return {
    queued: Math.max(0, r.queued),
    assigned: active - running,
    running,
    completed: Math.max(0, r.completed),
    failed: Math.max(0, r.failed),
    cancelled: Math.max(0, r.cancelled),
  };
}

const readShards = async (ctx: AppContext, between: [string, string]) =>
  (await Promise.all(SHARDS.map((s) => queryAll<StoreItem>(ctx.store, taskCountPk(s), { between })))).flat();

/**
 * The LIVE record of each shard: 8 single-item queries, eventually consistent (half a read unit
 * each, a get's half): a count is a moment's view anyway, and each record is read whole.
 */
const readLive = async (ctx: AppContext) =>
  (
    await Promise.all(
      SHARDS.map((s) =>
        ctx.store.query<StoreItem>(taskCountPk(s), { between: [LIVE_SK, LIVE_SK], limit: 1 }),
      ),
    )
  ).flatMap((page) => page.items);

function sum(items: readonly StoreItem[]): TaskCounts {
  const states = rawZero();
  const byType = new Map<string, Raw>();
  const queuedByModel = new Map<string, number>();
  const queuedByPriority = new Map<number, number>();
  const add = <K>(m: Map<K, number>, k: K, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  for (const item of items) {
    for (const [field, value] of Object.entries(item)) {
      if (typeof value !== 'number') continue;
      const [state, kind, ...rest] = field.split(':');
      const s = FIELDS.find((f) => f === state);
      if (!s) continue;
      const name = rest.join(':');
      if (kind === undefined) states[s] += value;
      else if (kind === 't') (byType.get(name) ?? byType.set(name, rawZero()).get(name)!)[s] += value;
      else if (kind === 'm' && s === 'queued') add(queuedByModel, name, value);
      else if (kind === 'p' && s === 'queued') add(queuedByPriority, Number(name), value);
    }
  }
  // A count one off (a lost counter write) never shows as negative.
  const positive = <K>(m: Map<K, number>) => {
    for (const [k, v] of m) if (v <= 0) m.delete(k);
    return m;
  };
  return {
    states: settle(states),
    byType: new Map([...byType].map(([t, r]) => [t, settle(r)] as const)),
    queuedByModel: positive(queuedByModel),
    queuedByPriority: positive(queuedByPriority),
  };
}

/**
 * The counters summed over their shards. With `finished` (a listing's `total`): 8 queries, each of
 * the LIVE record and the day records of one partition; without (queue lengths and depths, which
 * leave the finished counts at zero): 8 single-item queries.
 */
export async function readTaskCounts(ctx: AppContext, opts: { finished: boolean }): Promise<TaskCounts> {
  if (!opts.finished) return sum(await readLive(ctx));
  return sum(await readShards(ctx, [dayKey(ctx.now() - (FINISHED_DAYS - 1) * DAY_MS), LIVE_SK]));
}

/** The live counts, and the LIVE records they sum (for recountQueued). */
export async function readLiveCounts(ctx: AppContext): Promise<{ counts: TaskCounts; records: StoreItem[] }> {
  const records = await readLive(ctx);
  return { counts: sum(records), records };
}

/**
 * The queued counts (in all and by model, priority and task type) recounted from the queue, a
 * bounded read once a minute (the scheduled placement run), so a count a dead process left one
 * off (or below zero) comes right. The queue moves while it is read, so a recount only counts a
 * queue that did not move: no counted transition in or out (`queuedMoves` unchanged) from a
 * minute before the read (the index may lag its table) to a minute after (a transition whose
 * counter write was still on its way would otherwise count twice); runs less than QUIET_MS apart
 * leave the record as it is. A run reads the LIVE records
 * (`records`, which it has for its own counts), the recount record, and, in a quiet minute, the
 * queue when it is counted at most RECOUNT_PAGE tasks (a longer one is recounted once it is short);
 * the next run adds the difference to one shard if the queue was still quiet. Runs that overlap
 * claim the record first: one of them corrects. Active, running and finished counts are not
 * recounted.
 */
export async function recountQueued(
  ctx: AppContext,
  records: readonly StoreItem[],
): Promise<{ read: number; corrected?: Record<string, number> }> {
  const k = taskQueueKeys.taskCountRecount;
  const moves = records.reduce((n, r) => n + (typeof r[MOVES] === 'number' ? r[MOVES] : 0), 0);
  const last = await ctx.store.get<RecountItem>(k.pk, k.sk);
  const token = () => randomBytes(6).toString('hex');
  const at = ctx.now();
  // A run soon after the last one (a retry, an overlap) cannot tell a still queue: it leaves the record.
  if (last?.moves === moves && at - last.at < QUIET_MS) return { read: 0 };
  const quiet = last?.moves === moves;
  let corrected: Record<string, number> | undefined;
  if (quiet && last.counts) {
    const stored = queuedFields(records);
    const diff: Record<string, number> = {};
    for (const f of new Set([...Object.keys(last.counts), ...Object.keys(stored)])) {
      const d = (last.counts[f] ?? 0) - (stored[f] ?? 0);
      if (d) diff[f] = d;
    }
    if (
      Object.keys(diff).length &&
      (await updateIf(
        ctx.store,
        k.pk,
        k.sk,
        { set: { token: token() }, remove: ['counts'] },
        { equals: { token: last.token } },
      ))
    ) {
      const shard = Math.floor(Math.random() * TASK_COUNT_SHARDS);
      await ctx.store.update(taskCountPk(shard), LIVE_SK, { add: diff }, {});
      corrected = diff;
      ctx.logger.warn('task counters recounted', { diff });
    }
  }
  if (!quiet) {
    await ctx.store.put<RecountItem>({ ...k, moves, at, token: token() });
    return { read: 0 };
  }
  // Counted longer than a page (a drift is one or a few): left for when it is short.
  if ((queuedFields(records).queued ?? 0) > RECOUNT_PAGE) {
    if (last.counts) await ctx.store.put<RecountItem>({ ...k, moves, at, token: token() });
    return { read: 0, ...(corrected ? { corrected } : {}) };
  }
  const page = await ctx.store.query<TaskItem>(taskQueueKeys.queuePk, {
    index: 'gsi1',
    limit: RECOUNT_PAGE + 1,
  });
  if (page.items.length > RECOUNT_PAGE || page.cursor) {
    if (last.counts) await ctx.store.put<RecountItem>({ ...k, moves, at, token: token() });
    return { read: page.items.length, ...(corrected ? { corrected } : {}) };
  }
  const counts: Record<string, number> = {};
  for (const t of page.items)
    if (t.counted)
      for (const [f, v] of Object.entries(live('queued', t, 1))) counts[f] = (counts[f] ?? 0) + v;
  if (corrected || JSON.stringify(counts) !== JSON.stringify(last.counts))
    await ctx.store.put<RecountItem>({ ...k, moves, at, counts, token: token() });
  return { read: page.items.length, ...(corrected ? { corrected } : {}) };
}

/** Queued tasks a recount reads at most. */
export const RECOUNT_PAGE = 200;
/** How long the queue must stand still on either side of a recount's read (runs are a minute apart). */
const QUIET_MS = 50_000;

interface RecountItem extends StoreItem {
  /** `queuedMoves` summed when it was written, and when. */
  moves: number;
  at: number;
  /** The queued counts read then (absent: the queue moved, or was too long). */
  counts?: Record<string, number>;
  /** Changed by every claim. */
  token: string;
}

const queuedFields = (records: readonly StoreItem[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of records)
    for (const [f, v] of Object.entries(r))
      if (typeof v === 'number' && f.split(':')[0] === 'queued') out[f] = (out[f] ?? 0) + v;
  return out;
};

/**
 * The live counts, and tasks queued, assigned and running now with those finished in the last 24
 * hours (the fleet's hour records: the current one and the 23 before): 8 single-item queries and
 * 8 queries of at most 24 small items.
 */
export async function readRecentCounts(ctx: AppContext): Promise<{ live: TaskCounts; recent: StatusCounts }> {
  const [done, lives] = await Promise.all([readFleetFinished(ctx, 24 * HOUR_MS), readLive(ctx)]);
  const live = sum(lives);
  return {
    live,
    recent: {
      ...live.states,
      completed: done.completed,
      failed: done.failed,
      cancelled: done.cancelled,
    },
  };
}

/** Tasks in one status, or in all (`undefined`). */
export function countOf(counts: StatusCounts, status?: TaskStatus): number {
  if (status === undefined) return Object.values(counts).reduce((n, v) => n + v, 0);
  return counts[status];
}
