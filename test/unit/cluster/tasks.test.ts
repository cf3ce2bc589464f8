import { describe, expect, it } from 'vitest';
import { queueOrder, runTimeoutFor, type TaskItem } from '../../../functions/cluster/tasks.js';
import { QUEUE_LEVEL_MS, keys } from '../../../functions/core/keys.js';
import { DEFAULT_AGING_PER_MINUTE } from '../../../functions/task-planner/priority.js';

const task = (over: Partial<TaskItem>): TaskItem => ({
  pk: 'p',
  sk: 's',
  taskId: 't',
  source: 'vision',
  taskType: 'image_generation',
  model: 'm',
  parameters: {},
  priority: 0,
  priorityInput: 0,
  status: 'queued',
  createdAt: new Date(0).toISOString(),
  createdAtMs: 0,
  runTimeoutSeconds: 600,
  attempts: 0,
  progress: 0,
  ...over,
});

describe('queue order', () => {
  it('is the scheduler order: priority, then age, with timed-out tasks left out', () => {
    const q = [
      task({ taskId: 'old-low', priority: -1, createdAtMs: 0 }),
      task({ taskId: 'normal', priority: 0, createdAtMs: 1_000 }),
      task({ taskId: 'critical', priority: 2, createdAtMs: 2_000 }),
      task({ taskId: 'normal-2', priority: 0, createdAtMs: 3_000 }),
      task({ taskId: 'expired', priority: 2, createdAtMs: 0, timeoutSeconds: 1 }),
    ];
    expect(queueOrder(q, 5_000).map((t) => t.taskId)).toEqual(['critical', 'normal', 'normal-2', 'old-low']);
    // After 40 minutes of waiting the low task has aged past a fresh critical one.
    const later = [q[0]!, task({ taskId: 'fresh-critical', priority: 2, createdAtMs: 40 * 60_000 })];
    expect(queueOrder(later, 40 * 60_000)[0]!.taskId).toBe('old-low');
  });

  it('gives the agent what is left of a deadline, else the default run timeout', () => {
    expect(runTimeoutFor(task({}), 10_000)).toBe(600);
    expect(runTimeoutFor(task({ timeoutSeconds: 300 }), 100_000)).toBe(200);
    expect(runTimeoutFor(task({ timeoutSeconds: 300 }), 400_000)).toBe(1);
  });
});

describe('the queue index key', () => {
  it('sorts as the scheduler serves (priority with aging, then age, then id), whatever the clock', () => {
    // Levels -1..2 over 40 minutes (aging: a level every 10), ties at one instant, from the epoch on.
    const tasks: TaskItem[] = [];
    for (let i = 0; i < 80; i++) {
      const createdAtMs = Math.floor(i / 3) * 90_000 + (i % 2) * 7;
      tasks.push(
        task({
          taskId: `t${String((i * 37) % 80).padStart(2, '0')}`,
          priority: (i % 4) - 1,
          createdAtMs,
          createdAt: new Date(createdAtMs).toISOString(),
        }),
      );
    }
    const now = 50 * 60_000;
    const byKey = [...tasks].sort((a, b) => {
      const ka = keys.queuedIndex(a.priority, a.createdAt, a.taskId).gsi1sk;
      const kb = keys.queuedIndex(b.priority, b.createdAt, b.taskId).gsi1sk;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    expect(byKey.map((t) => t.taskId)).toEqual(queueOrder(tasks, now).map((t) => t.taskId));
    expect(QUEUE_LEVEL_MS).toBe(60_000 / DEFAULT_AGING_PER_MINUTE);
  });
});
