import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aloneInSecond, queuePosition } from '../../../functions/cluster/queue-position.js';
import {
  closeQueued,
  markAssigned,
  queuedTasks,
  queueOrder,
  submitTask,
  type TaskItem,
} from '../../../functions/cluster/tasks.js';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { keys, QUEUE_LEVEL_MS, taskQueueKeys } from '../../../functions/core/keys.js';
import { Meter } from '../../../functions/metering/meter.js';
import { MeteredStore } from '../../../functions/metering/metered-ports.js';
import { countItems, queryAll, type Store, type StoreItem } from '../../../functions/ports/store.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

// Queue positions from the per-second counter records and a count of the task's own second
// (the index sorts in placement order) against the order the scheduler serves, over real DynamoDB
// semantics (dynalite): priorities, ages past the aging steps, ties at one instant, and tasks that
// left the queue.
describe('queue position from counts (embedded store)', () => {
  let ctx: AppContext;
  let stop: () => Promise<void>;
  let clock = Date.parse('2026-01-01T00:00:00Z');

  beforeAll(async () => {
    const made = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), { now: () => clock });
    ctx = made.ctx;
    stop = made.stop;
  });
  afterAll(async () => stop());

  it('matches the scheduler order for every queued task', async () => {
    // Deterministic spread over 50 minutes (aging lifts a task one level every 10).
    let seed = 11;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      // Some share an instant with the one before (FIFO then id decides).
      if (rand() > 0.2) clock += Math.floor(rand() * 100_000);
      const priority = Math.floor(rand() * 4) - 1;
      const t = await submitTask(ctx, {
        source: 'cluster',
        taskType: 'image_generation',
        model: 'm',
        parameters: {},
        priority,
        priorityInput: priority,
      });
      ids.push(t.taskId);
    }
    // Tasks that left the queue count for nobody.
    for (const id of ids.slice(5, 10)) await closeQueued(ctx, id, 'cancelled', 'cancelled');

    const queued = await queuedTasks(ctx);
    expect(queued).toHaveLength(55);
    const order = queueOrder(queued, clock);
    const counted = await Promise.all(order.map((t) => queuePosition(ctx, t)));
    expect(counted).toEqual(order.map((_, i) => i + 1));
    // Distinct levels and ages really interleave: the order is not the submission order.
    expect(order.map((t) => t.taskId)).not.toEqual(ids.filter((id) => !ids.slice(5, 10).includes(id)));
    // The records hold the queue, a second's record gone once its tasks left.
    const records = await queryAll<StoreItem & { n: number }>(ctx.store, taskQueueKeys.queueCountPk);
    expect(records.reduce((n, r) => n + r.n, 0)).toBe(55);
    expect(records.every((r) => r.n > 0)).toBe(true);
  });

  it('takes a task read alone in its second off with one conditional delete, a joiner with a decrement', async () => {
    clock += 3_600_000;
    const submit = () =>
      submitTask(ctx, {
        source: 'cluster',
        taskType: 'image_generation',
        model: 'alone',
        parameters: {},
        priority: 0,
        priorityInput: 0,
      });
    const lone = await submit();
    clock += 5_000;
    const first = await submit();
    const joiner = await submit();
    const queue = (await queuedTasks(ctx)).filter((t) => t.model === 'alone');
    // Read to the queue's end: the second holding two is not alone.
    expect([...aloneInSecond(queue, true)]).toEqual([lone.taskId]);
    // Read as a prefix ending at `first`: what follows it is unknown.
    expect([...aloneInSecond(queue.slice(0, 2), false)]).toEqual([lone.taskId]);
    const meter = new Meter();
    const metered = { ...ctx, store: new MeteredStore(ctx.store, meter) };
    // Writes by kind: two updates are the task's own and its live counter (task-counts.ts).
    const writes = () =>
      Object.fromEntries(
        meter
          .list()
          .filter((e) => e.units.writeUnits > 0)
          .map((e) => [e.kind, e.calls]),
      );
    const record = async (t: TaskItem) => {
      const k = taskQueueKeys.queueCount(
        Math.floor(Date.parse(t.createdAt) / 1000) * 1000 + 10 * QUEUE_LEVEL_MS,
      );
      return ctx.store.get<StoreItem & { n: number }>(k.pk, k.sk);
    };
    expect((await record(lone))?.n).toBe(1);
    await markAssigned(metered, lone.taskId, 'n1', 0, false, 'c1', { aloneInSecond: true });
    expect(await record(lone)).toBeUndefined();
    // Its second's record: one delete (a decrement to zero and a delete before).
    expect(writes()).toEqual({ 'dynamo.update': 2, 'dynamo.delete': 1 });
    // Read alone, joined since: the condition fails and the decrement follows.
    meter.reset();
    await markAssigned(metered, first.taskId, 'n1', 1, false, 'c2', { aloneInSecond: true });
    expect((await record(joiner))?.n).toBe(1);
    expect(writes()).toEqual({ 'dynamo.update': 3, 'dynamo.delete.failed': 1 });
    await closeQueued(ctx, joiner.taskId, 'cancelled', 'cancelled');
    expect(await record(joiner)).toBeUndefined();
  });

  it('keeps the queue index in the order placement serves it, page after page', async () => {
    const order = queueOrder(await queuedTasks(ctx), clock).map((t) => t.taskId);
    const read: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await ctx.store.query<TaskItem>(taskQueueKeys.queuePk, {
        index: 'gsi1',
        limit: 7,
        ...(cursor ? { cursor } : {}),
      });
      read.push(...page.items.map((t) => t.taskId));
      cursor = page.cursor;
    } while (cursor);
    expect(read).toEqual(order);
  });

  it('counts without the store count the same as with it', async () => {
    const store = ctx.store as Store;
    const withCount = await countItems(store, taskQueueKeys.queuePk, { index: 'gsi1' });
    const plain: Store = { ...store, query: store.query.bind(store), count: undefined };
    expect(await countItems(plain, taskQueueKeys.queuePk, { index: 'gsi1' })).toBe(withCount);
    expect(withCount).toBe(55);
  });
});

describe('queue position reads (embedded store, metered)', () => {
  let ctx: AppContext;
  let stop: () => Promise<void>;
  let clock = Date.parse('2026-01-01T00:00:00Z');

  beforeAll(async () => {
    const made = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), { now: () => clock });
    ctx = made.ctx;
    stop = made.stop;
  });
  afterAll(async () => stop());

  it("reads the records of the seconds ahead and its own second's tasks, not every task ahead", async () => {
    // 1,200 queued: 40 a second over 30 seconds, two priority levels; the newest is of the lower.
    const tasks: TaskItem[] = [];
    for (let i = 0; i < 1200; i++) {
      clock += 25;
      tasks.push(
        await submitTask(ctx, {
          source: 'vision',
          taskType: 'image_generation',
          model: 'm',
          parameters: { prompt: `task ${i}` },
          priority: (i + 1) % 2,
          priorityInput: (i + 1) % 2,
        }),
      );
    }
    const meter = new Meter();
    const metered = { ...ctx, store: new MeteredStore(ctx.store, meter) };
    const newest = tasks.at(-1)!;
    expect(await queuePosition(metered, newest)).toBe(1200);
    const position = meter.total().readUnits;
    // What one count of the tasks ahead read (the way before).
    meter.reset();
    const own = keys.queuedIndex(newest.priority, newest.createdAt, newest.taskId).gsi1sk;
    expect(
      await countItems(metered.store, taskQueueKeys.queuePk, { index: 'gsi1', between: ['0', own] }),
    ).toBe(1200);
    const counted = meter.total().readUnits;
    // 59 records of about 60 bytes (the seconds of both levels ahead) and the 20 tasks of its own
    // second: two queries of half a unit. The count read 72.5 units.
    expect(position).toBe(1);
    expect(counted).toBeGreaterThan(50 * position);
  }, 60_000);
});
