import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markAssigned, submitTask, type TaskItem } from '../../../functions/cluster/tasks.js';
import { estimateWait } from '../../../functions/cluster/wait-estimate.js';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { taskQueueKeys } from '../../../functions/core/keys.js';
import { storePart } from '../../../functions/nodes/fleet-aggregate.js';
import type { Store, StoreItem } from '../../../functions/ports/store.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

// The wait estimate without a fresh fleet sample: the sweep's aggregate less the counted
// assigned and running tasks, never the held slots (one per running task of the fleet).
describe('wait estimate from the aggregate and the task counters (embedded store)', () => {
  let ctx: AppContext;
  let stop: () => Promise<void>;
  let clock = Date.parse('2026-01-01T00:00:00Z');

  beforeAll(async () => {
    const made = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), { now: () => clock });
    ctx = made.ctx;
    stop = made.stop;
    // 4 online slots, no model resident; no per-minute sample is recorded.
    await storePart(ctx, -1, 0, clock, {
      onlineNodes: 2,
      slots: 4,
      utilSum: 0,
      utilCount: 0,
      memUsedMb: 0,
      memTotalMb: 0,
      resident: {},
    });
  });
  afterAll(async () => stop());

  // A second apart: the queue serves them in submission order.
  const submit = (): Promise<TaskItem> =>
    submitTask(
      { ...ctx, now: () => (clock += 1000) },
      {
        source: 'cluster',
        taskType: 'image_generation',
        model: 'wait-m',
        parameters: {},
        priority: 0,
        priorityInput: 0,
      },
    );

  it('counts assigned tasks against the slots and reads no held slot', async () => {
    const tasks: TaskItem[] = [];
    for (let i = 0; i < 6; i++) tasks.push(await submit());
    // Six queued, four slots free: the sixth waits one wave of the default 30 s.
    expect(await estimateWait(ctx, tasks[5]!)).toBe('30s');
    expect(await estimateWait(ctx, tasks[3]!)).toBe('0s');

    // Three placed (held slots exist, counted as assigned): one slot left for three queued.
    for (const [i, t] of tasks.slice(0, 3).entries())
      expect(await markAssigned(ctx, t.taskId, `node-${i}`, 0, false, `cmd-${i}`)).toBeDefined();
    for (let i = 0; i < 3; i++)
      await ctx.store.put<StoreItem>({
        ...taskQueueKeys.nodeSlot(`node-${i}`, 0),
        ...taskQueueKeys.heldSlotIndex(`node-${i}`, 0),
      });
    expect(await estimateWait(ctx, tasks[3]!)).toBe('0s');
    expect(await estimateWait(ctx, tasks[4]!)).toBe('30s');
    expect(await estimateWait(ctx, tasks[5]!)).toBe('30s');

    // What it reads: no item of the held-slot index.
    const queried: string[] = [];
    const store = new Proxy(ctx.store, {
      get(target, prop: keyof Store) {
        const value = target[prop];
        if (prop === 'query')
          return (pk: string, ...rest: unknown[]) => {
            queried.push(pk);
            return (target.query as (...a: unknown[]) => unknown)(pk, ...rest);
          };
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    expect(await estimateWait({ ...ctx, store }, tasks[5]!)).toBe('30s');
    expect(queried.length).toBeGreaterThan(0);
    expect(queried).not.toContain(taskQueueKeys.heldSlotsPk);
  });
});
