/**
 * Queue deadlines without reading the queue: a task submitted with a `timeout` gets one small
 * record keyed by its deadline (creation + timeout), written beside the task. The scheduled
 * placement run reads the records past due, oldest first and a page at a time, so what it reads
 * follows the deadlines that passed since the last run, never the queue's depth.
 *
 * A record stays until its deadline passes: then the run fails the task if still queued, drops
 * the record if the task is finished or gone (cancelled, placed and done), and moves it a minute
 * on while the task is assigned or running (it may be requeued past its deadline, as before).
 * Written in parallel with the task: a record whose task write failed points at nothing and is
 * dropped when due. Records the runs never reach expire by TTL a week after their deadline.
 */
import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import type { StoreItem } from '../ports/store.js';
import type { TaskItem } from './task-model.js';

export interface DeadlineItem extends StoreItem {
  taskId: string;
  deadlineMs: number;
  timeoutSeconds: number;
}

/** Records one page reads. */
export const DEADLINE_PAGE = 100;
/** Pages one run reads at most; the rest wait for the next run. */
export const DEADLINE_PAGES = 5;
/** How far on a record of an active task moves (a requeue after it is caught a minute later). */
const RECHECK_MS = 60_000;
const TTL_SECONDS = 7 * 86_400;

const record = (taskId: string, deadlineMs: number, timeoutSeconds: number): DeadlineItem => ({
  ...taskQueueKeys.queueDeadline(deadlineMs, taskId),
  taskId,
  deadlineMs,
  timeoutSeconds,
  expiresAt: Math.floor(deadlineMs / 1000) + TTL_SECONDS,
});

/** The deadline record of a task submitted with a `timeout` (none without one). */
export async function recordQueueDeadline(ctx: AppContext, task: TaskItem): Promise<void> {
  if (task.timeoutSeconds === undefined) return;
  await ctx.store.put(
    record(task.taskId, task.createdAtMs + task.timeoutSeconds * 1000, task.timeoutSeconds),
  );
}

/** Up to DEADLINE_PAGES pages of records due at `now`, oldest deadline first. */
export async function* dueDeadlines(ctx: AppContext, now: number): AsyncGenerator<DeadlineItem[]> {
  const { sk: upTo } = taskQueueKeys.queueDeadline(now, '\uffff');
  let cursor: string | undefined;
  for (let i = 0; i < DEADLINE_PAGES; i++) {
    const page = await ctx.store.query<DeadlineItem>(taskQueueKeys.queueDeadlinesPk, {
      between: ['0', upTo],
      limit: DEADLINE_PAGE,
      ...(cursor ? { cursor } : {}),
    });
    if (page.items.length) yield page.items;
    cursor = page.cursor;
    if (!cursor) return;
  }
}

export async function dropDeadline(ctx: AppContext, item: DeadlineItem): Promise<void> {
  await ctx.store.delete(item.pk, item.sk);
}

/** Checked again a minute on: the task was active at its deadline and may come back to the queue. */
export async function recheckDeadline(ctx: AppContext, item: DeadlineItem, now: number): Promise<void> {
  const next = record(item.taskId, item.deadlineMs, item.timeoutSeconds);
  await ctx.store.put({ ...next, ...taskQueueKeys.queueDeadline(now + RECHECK_MS, item.taskId) });
  await dropDeadline(ctx, item);
}
