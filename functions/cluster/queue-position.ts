import type { AppContext } from '../core/context.js';
import { keys, taskQueueKeys } from '../core/keys.js';
import { countItems } from '../ports/store.js';
import type { TaskItem } from './tasks.js';

/**
 * A queued task's 1-based place in the order the scheduler serves (effective priority, then
 * FIFO), counted on the queue index instead of reading it: the index sorts in that order
 * (keys.queuedIndex), so the place is how many queued tasks sort up to the task's own key, one
 * count whatever the queue's depth or the fleet's size. Keys of the layout before (tasks queued
 * before it, the oldest) sort first and count as ahead. A task past its queue deadline counts
 * until the next placement run fails it.
 */
export async function queuePosition(
  ctx: AppContext,
  task: Pick<TaskItem, 'taskId' | 'priority' | 'createdAt' | 'createdAtMs'>,
): Promise<number> {
  const own = keys.queuedIndex(task.priority, task.createdAt, task.taskId).gsi1sk;
  // '0' sorts before every key of both layouts (`Q#…`, and `997#`…`1000#` before it).
  // With itself while it is queued.
  return countItems(ctx.store, taskQueueKeys.queuePk, { index: 'gsi1', between: ['0', own] });
}
