import type { AppContext } from '../core/context.js';
import { keys, QUEUE_KEY_PREFIX, QUEUE_LEVEL_MS, taskQueueKeys } from '../core/keys.js';
import { conditional, countItems, queryAll, type StoreItem } from '../ports/store.js';
import type { TaskItem, TaskStatus } from './task-model.js';

/**
 * Queue positions without reading the queue ahead. The queue index sorts in the order placement
 * serves (keys.queuedIndex: priority with aging, then age, as one placement-order time), and a
 * counter record per second of that time (`QUEUECOUNT`, `B#<second>`) holds how many queued
 * tasks fall in it: +1 when a task enters the queue, -1 when it leaves (tasks.ts), gone when back
 * at zero. A task's place is the sum of the records of the seconds before its own plus a count of
 * its own second up to its key: small records (never more than the queued tasks ahead, usually far
 * fewer) and the tasks of one second, whatever the queue's depth.
 */
const BUCKET_MS = 1000;

type Placed = Pick<TaskItem, 'taskId' | 'priority' | 'createdAt'>;

/** The start of the second of placement-order time the task sorts in (what keys.queuedIndex sorts by). */
const bucketOf = (t: Placed) => {
  const placementMs = Date.parse(t.createdAt) + (10 - t.priority) * QUEUE_LEVEL_MS;
  return Math.floor(placementMs / BUCKET_MS) * BUCKET_MS;
};

type CountRecord = StoreItem & { n?: number };

/**
 * Moves the task's second by one as it enters (`to` queued) or leaves (`from` queued) the queue;
 * tasks submitted before these records (`queueCounted` absent) move nothing. Failures are logged,
 * never thrown: the task's own write has happened (a count left one off is off until it empties).
 */
export async function countQueueMove(
  ctx: AppContext,
  task: Placed & Pick<TaskItem, 'queueCounted'>,
  from: TaskStatus | undefined,
  to: TaskStatus,
  options: { aloneInSecond?: boolean } = {},
): Promise<void> {
  const delta = (to === 'queued' ? 1 : 0) - (from === 'queued' ? 1 : 0);
  if (!task.queueCounted || !delta) return;
  const k = taskQueueKeys.queueCount(bucketOf(task));
  try {
    // Leaving a second it was read alone in: one conditional delete instead of a decrement and a
    // delete. A task that joined it since fails the condition, and the decrement follows.
    if (delta < 0 && options.aloneInSecond) {
      const gone = await conditional(ctx.store.delete<CountRecord>(k.pk, k.sk, { equals: { n: 1 } }));
      if (gone) return;
    }
    const after = await ctx.store.update<CountRecord>(k.pk, k.sk, { add: { n: delta } }, {});
    // Whoever brings it to zero removes it, only while it is still zero (adds commute; a move in
    // between keeps it).
    if (after.n === 0) await conditional(ctx.store.delete(k.pk, k.sk, { equals: { n: 0 } }));
  } catch (error) {
    ctx.logger.warn('queue count failed', { taskId: task.taskId, from, to, error: error as Error });
  }
}

/**
 * The tasks of `queue` (read from the queue's head in placement order; `whole`: to its end) that
 * were alone in their second of placement-order time as read: the tasks of a second sort together.
 */
export function aloneInSecond(queue: Placed[], whole: boolean): Set<string> {
  const out = new Set<string>();
  queue.forEach((t, i) => {
    const b = bucketOf(t);
    const prev = queue[i - 1];
    const next = queue[i + 1];
    if (prev && bucketOf(prev) === b) return;
    if (next ? bucketOf(next) !== b : whole) out.add(t.taskId);
  });
  return out;
}

/**
 * A queued task's 1-based place in the order the scheduler serves (effective priority, then
 * FIFO), itself included: the counted tasks of the seconds before its own, plus every queued task
 * of its own second that sorts up to it. Tasks queued before the counter records are counted only
 * in their own second. A task past its queue deadline counts until the next placement run fails it.
 */
export async function queuePosition(ctx: AppContext, task: Placed): Promise<number> {
  const bucket = bucketOf(task);
  const own = keys.queuedIndex(task.priority, task.createdAt, task.taskId).gsi1sk;
  const [before, inSecond] = await Promise.all([
    queryAll<CountRecord>(ctx.store, taskQueueKeys.queueCountPk, {
      between: ['B#', taskQueueKeys.queueCount(bucket - 1).sk],
    }),
    countItems(ctx.store, taskQueueKeys.queuePk, {
      index: 'gsi1',
      between: [`${QUEUE_KEY_PREFIX}${String(bucket).padStart(15, '0')}`, own],
    }),
  ]);
  return before.reduce((n, r) => n + Math.max(0, r.n ?? 0), 0) + inSecond;
}
