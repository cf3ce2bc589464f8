import type { AppContext } from '../core/context.js';
import { keys, taskQueueKeys } from '../core/keys.js';
import { countItems } from '../ports/store.js';
import { DEFAULT_AGING_PER_MINUTE, PRIORITY_CRITICAL, PRIORITY_LOW } from '../task-planner/priority.js';
import type { TaskItem } from './tasks.js';

const LEVELS = Array.from({ length: PRIORITY_CRITICAL - PRIORITY_LOW + 1 }, (_, i) => PRIORITY_LOW + i);
/** How long a task waits to gain one priority level (aging). */
const LEVEL_MS = 60_000 / DEFAULT_AGING_PER_MINUTE;

/**
 * A queued task's 1-based place in the order the scheduler serves (effective priority, then
 * FIFO), counted on the queue index instead of reading it: a task X of level q is ahead of T
 * (level p) when q + aging × (now − created X) ≥ p + aging × (now − created T), that is when
 * X was created before T's creation plus (q − p) levels' wait, whatever the time now. One count
 * per level: what it costs grows with neither the fleet nor what it reads back. A task past
 * its queue deadline counts until the next placement run fails it.
 */
export async function queuePosition(
  ctx: AppContext,
  task: Pick<TaskItem, 'taskId' | 'priority' | 'createdAt' | 'createdAtMs'>,
): Promise<number> {
  const counts = await Promise.all(
    LEVELS.map((q) => {
      // The level's sort keys start like the task's own would at that level.
      const level = keys.queuedIndex(q, '', '').gsi1sk.slice(0, -2);
      let upTo: string;
      if (q === task.priority) upTo = keys.queuedIndex(q, task.createdAt, task.taskId).gsi1sk;
      else {
        const bound = new Date(task.createdAtMs + (q - task.priority) * LEVEL_MS).toISOString();
        // Same effective priority: the older first (below the task's level: the other one).
        upTo = `${level}#${bound}#${q < task.priority ? '\uffff' : ''}`;
      }
      return countItems(ctx.store, taskQueueKeys.queuePk, { index: 'gsi1', between: [`${level}#`, upTo] });
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}
