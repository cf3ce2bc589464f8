/**
 * Issue 16: a placement run reads the queue a page at a time in placement order and stops once
 * its free slots are taken, so what it reads follows free capacity, not the queue's depth.
 * Metered through the store (functions/metering), over the embedded runtime with a simulated node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { declareModel, modelSpec } from '../../../functions/cluster/catalogue.js';
import { QUEUE_PAGE, runPlacement } from '../../../functions/cluster/placement.js';
import {
  markAssigned,
  queuedTasks,
  queueOrder,
  submitTask,
  type NewTask,
} from '../../../functions/cluster/tasks.js';
import type { AppContext } from '../../../functions/core/context.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { novitaKeys, taskQueueKeys } from '../../../functions/core/keys.js';
import { claimSlot, SWEEP_PAGE, SWEEP_PAGES } from '../../../functions/cluster/slots.js';
import { Meter } from '../../../functions/metering/meter.js';
import { meterContext } from '../../../functions/metering/metered-ports.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { loadHeldSlots } from '../../harness/held-slots.js';
import { GPU_WORKER, ScriptedAgent } from '../../harness/scripted-agent.js';

const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';
/** A model only rented nodes serve. */
const Z = 'rented-only-model';
const CLOUD_MODEL = {
  id: Z,
  kind: 'image',
  image: 'server:1',
  port: 8080,
  protocol: 'vision-generate',
  gpuMemoryMb: 0,
  command: ['serve'],
  cloud: { product: 'RTX 4090 24GB', max_price_per_hour: 1, always: true },
};

const newTask = (prompt: string, model: string, priority: number): NewTask => ({
  source: 'cluster',
  taskType: 'image_generation',
  model,
  parameters: { prompt },
  priority,
  priorityInput: priority,
});

/** The instance a model burst rented for Z, joined as `nodeId` (what functions/novita rents). */
async function putRentedInstance(ctx: AppContext, nodeId: string) {
  const at = new Date(ctx.now()).toISOString();
  await ctx.store.put({
    ...novitaKeys.instance('inst-z'),
    ...novitaKeys.instanceIndexes(at, 'inst-z', 'running'),
    instanceId: 'inst-z',
    name: 'burst-model-z',
    status: 'running',
    createdAt: at,
    joinedAt: at,
    lastActiveAt: at,
    nodeId,
    burstModel: Z,
  });
}

const samples = async (ctx: AppContext) =>
  (
    await ctx.store.query<{ pk: string; sk: string; queuedTasks: number }>(taskQueueKeys.clusterSamplesPk, {
      ascending: false,
    })
  ).items;

describe('a placement run with a deep queue', () => {
  let rt: Runtime | undefined;
  let agent: ScriptedAgent | undefined;
  let rented: ScriptedAgent | undefined;
  afterEach(() => stop());

  interface QueueOptions {
    /** The first this many tasks (the oldest) for a GPU type no node has. */
    blocked?: number;
    /** Run as the minute schedule does (the fleet sample, every held slot, queue deadlines). */
    scheduled?: boolean;
    /** A cloud-only model's rented node (one slot) serves every fifth task. */
    rented?: boolean;
    /** Tasks past their queue deadline, besides the queue (the others' deadlines are a day away). */
    due?: number;
    /** Held slots of other nodes (the tasks the rest of the fleet runs), loaded straight into the store. */
    held?: { count: number; model: string };
    /** A task assigned to a node that is gone (its slot sorts after the others'): its id in `lost`. */
    lost?: boolean;
  }

  /**
   * `depth` queued tasks over two models and four priority levels, then one node with 2 free
   * slots, and the run measured.
   */
  async function deepQueue(depth: number, opts: QueueOptions = {}) {
    const blocked = opts.blocked ?? 0;
    const meter = new Meter();
    // Runs the events bring are held back: the test runs the one it measures itself.
    const hold = (handlers: Record<string, EventHandler>) => ({
      ...handlers,
      'placement.run': async () => undefined,
    });
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined },
      instrument: { context: (ctx) => void meterContext(ctx, meter), events: hold },
    });
    const ctx = rt.ctx;
    if (opts.rented) await declareModel(ctx, modelSpec.parse(CLOUD_MODEL));
    let clock = ctx.now() - 3 * 3_600_000;
    const due: string[] = [];
    for (let i = 0; i < (opts.due ?? 0); i++) {
      const at = (clock += 1_000);
      const task = await submitTask(
        { ...ctx, now: () => at },
        { ...newTask(`due ${i}`, X, 0), timeoutSeconds: 60 },
      );
      due.push(task.taskId);
    }
    for (let i = 0; i < depth; i += 50) {
      // Spread over hours so aging interleaves the levels; in parallel batches to load quickly.
      await Promise.all(
        Array.from({ length: Math.min(50, depth - i) }, (_, j) => {
          const n = i + j;
          const priority = (n % 4) - 1;
          const at = (clock += 5_000);
          const model = opts.rented && n % 5 === 0 ? Z : n % 3 ? X : Y;
          return submitTask(
            { ...ctx, now: () => at },
            {
              ...newTask(`deep ${n}`, model, n < blocked ? 2 : priority),
              priorityInput: priority,
              ...(opts.due !== undefined ? { timeoutSeconds: 86_400 } : {}),
              ...(n < blocked ? { requirements: { gpuType: 'none here' } } : {}),
            },
          );
        }),
      );
    }
    agent = new ScriptedAgent(rt.url, `deep-${depth}`, { ...GPU_WORKER, models: [X, Y], maxConcurrency: 2 });
    await agent.register();
    await agent.heartbeat();
    if (opts.rented) {
      rented = new ScriptedAgent(rt.url, `rented-${depth}`, {
        ...GPU_WORKER,
        driver: 'process',
        models: [Z],
      });
      await rented.register();
      await rented.heartbeat();
      await putRentedInstance(ctx, rented.nodeId!);
    }
    if (opts.held)
      await loadHeldSlots(ctx, opts.held.count, opts.held.model, { deadlineMs: ctx.now() + 3_600_000 });
    const lost = opts.lost ? await loseTask(ctx) : undefined;
    const dueIds = new Set(due);
    const expected = queueOrder(await queuedTasks(ctx), ctx.now())
      .filter((t) => !t.requirements && !dueIds.has(t.taskId) && t.model !== Z)
      .slice(0, 2);
    meter.reset();
    const report = await meter.within('run', () => runPlacement(ctx, opts.scheduled ? { sample: true } : {}));
    // A queue-count record goes when the run empties its second (queue-position.ts): whether it
    // does depends on which seconds the loaded tasks share, not on the depth.
    const deletes = meter.total((e) => e.label === 'run' && e.kind === 'dynamo.delete').dynamoCalls;
    return { report, expected, due, units: meter.total((e) => e.label === 'run'), deletes, lost };
  }

  /** A task placed on node `zz-gone` (as placement-apply writes it), a node the store does not hold. */
  async function loseTask(ctx: AppContext): Promise<string> {
    const task = await submitTask(ctx, newTask('lost', X, 0));
    const slot = await claimSlot(ctx, 'zz-gone', [0], task.taskId, X, ctx.now() + 3_600_000);
    expect(slot).toBe(0);
    expect(await markAssigned(ctx, task.taskId, 'zz-gone', 0, false, 'cmd-lost')).toBeDefined();
    return task.taskId;
  }

  async function stop() {
    await agent?.stop();
    agent = undefined;
    await rented?.stop();
    rented = undefined;
    await rt?.stop();
    rt = undefined;
  }

  it('reads a page of 2,000 queued tasks for 2 free slots, and places the first two in order', async () => {
    const deep = await deepQueue(2_000);
    // The two tasks placement serves first (priority with aging, then age) are the two placed.
    expect(deep.report.placed.map((p) => p.taskId).sort()).toEqual(deep.expected.map((t) => t.taskId).sort());
    expect(deep.report.queueRead).toBe(QUEUE_PAGE);
    await stop();

    const shallow = await deepQueue(50);
    expect(shallow.report.placed).toHaveLength(2);
    expect(shallow.report.queueRead).toBe(QUEUE_PAGE);
    // What the run reads is the same with 50 and with 2,000 queued: the queue's first page, the
    // held slots, the catalogue and the node. The whole queue would be about 0.1 units a task.
    expect(deep.units.readUnits).toBe(shallow.units.readUnits);
    expect(deep.units.dynamoCalls).toBe(shallow.units.dynamoCalls);
    expect(deep.units.readUnits).toBeLessThan(20);
  }, 180_000);

  it('reads on past tasks no free slot fits, and places the first ones that fit', async () => {
    // 60 critical tasks for a GPU type nobody has head the queue: the run reads past them.
    const run = await deepQueue(200, { blocked: 60 });
    expect(run.report.placed.map((p) => p.taskId).sort()).toEqual(run.expected.map((t) => t.taskId).sort());
    expect(run.report.queueRead).toBe(3 * QUEUE_PAGE);
  }, 180_000);

  it('the scheduled run reads the same with 50 and 2,000 queued: deadlines past due, counts, a page', async () => {
    // Every queued task has a queue deadline (a day away); five more are past theirs.
    const deep = await deepQueue(2_000, { scheduled: true, due: 5 });
    expect(deep.report.timedOut.sort()).toEqual([...deep.due].sort());
    expect(deep.report.placed.map((p) => p.taskId).sort()).toEqual(deep.expected.map((t) => t.taskId).sort());
    expect(deep.report.queueRead).toBe(QUEUE_PAGE);
    const [deepSample] = await samples(rt!.ctx);
    await stop();

    const shallow = await deepQueue(50, { scheduled: true, due: 5 });
    expect(shallow.report.timedOut.sort()).toEqual([...shallow.due].sort());
    expect(shallow.report.placed).toHaveLength(2);
    expect(shallow.report.queueRead).toBe(QUEUE_PAGE);
    const [shallowSample] = await samples(rt!.ctx);
    // The sample's queue length comes from the counters (taken before this run placed).
    expect(deepSample?.queuedTasks).toBe(2_000);
    expect(shallowSample?.queuedTasks).toBe(50);
    // The five deadline records past due and their tasks, the counters, the first page of the
    // queue, the held-slot cursor and a page of held slots, the catalogue, the node and a lookup of
    // the slots running each queued model: the same at both depths.
    expect(deep.units.readUnits).toBe(shallow.units.readUnits);
    expect(deep.units.dynamoCalls - deep.deletes).toBe(shallow.units.dynamoCalls - shallow.deletes);
    // No sweep ran here: the sample also looks for the last aggregate (readerAggregate, half a unit).
    expect(deep.units.readUnits).toBeLessThanOrEqual(28.5);
  }, 240_000);

  it('a run with a rented model node reads the same with 50 and 2,000 queued', async () => {
    const deep = await deepQueue(2_000, { rented: true });
    const onRented = (r: typeof deep) => r.report.placed.filter((p) => p.nodeId === rented!.nodeId);
    expect(deep.report.placed).toHaveLength(3);
    expect(onRented(deep)).toHaveLength(1);
    expect(deep.report.queueRead).toBe(QUEUE_PAGE);
    await stop();

    const shallow = await deepQueue(50, { rented: true });
    expect(shallow.report.placed).toHaveLength(3);
    expect(onRented(shallow)).toHaveLength(1);
    expect(shallow.report.queueRead).toBe(QUEUE_PAGE);
    // The rented node's model waits with its queued count from the counters, not the queue.
    expect(deep.units.readUnits).toBe(shallow.units.readUnits);
    expect(deep.units.dynamoCalls).toBe(shallow.units.dynamoCalls);
    // The two nodes' own slot partitions and a lookup of the slots running each queued model.
    expect(deep.units.readUnits).toBeLessThanOrEqual(22);
  }, 240_000);

  it('an event-driven run reads the same with 10 and 1,000 slots held across the fleet', async () => {
    // Issue 16: a quick run reads its candidates' own slots, not the fleet's held-slot index.
    const few = await deepQueue(50, { held: { count: 10, model: 'busy-model' } });
    await stop();
    const many = await deepQueue(50, { held: { count: 1_000, model: 'busy-model' } });
    expect(few.report.placed).toHaveLength(2);
    expect(many.report.placed).toHaveLength(2);
    expect(many.units.readUnits).toBe(few.units.readUnits);
    expect(many.units.dynamoCalls).toBe(few.units.dynamoCalls);
    expect(many.units.readUnits).toBeLessThan(20);
  }, 180_000);

  it('the busy nodes serving a queued model a run reads are a page, however many run it', async () => {
    // 20 or 1,000 slots running X: the run reads a page of them (its busy candidates), no more.
    const few = await deepQueue(50, { held: { count: 20, model: X } });
    await stop();
    const many = await deepQueue(50, { held: { count: 1_000, model: X } });
    expect(many.report.placed).toHaveLength(2);
    expect(many.units.readUnits).toBe(few.units.readUnits);
    expect(many.units.dynamoCalls).toBe(few.units.dynamoCalls);
  }, 180_000);

  it('the scheduled run checks the same number of held slots with 500 and 1,000 held', async () => {
    // Both fleets hold more slots than a run checks (SWEEP_PAGES pages of SWEEP_PAGE): a run reads
    // that many and their nodes and tasks, whatever the fleet runs.
    expect(SWEEP_PAGES * SWEEP_PAGE).toBeLessThan(500);
    const fewer = await deepQueue(50, { scheduled: true, held: { count: 500, model: 'busy-model' } });
    await stop();
    const more = await deepQueue(50, { scheduled: true, held: { count: 1_000, model: 'busy-model' } });
    expect(fewer.report.placed).toHaveLength(2);
    expect(more.report.placed).toHaveLength(2);
    expect(more.units.readUnits).toBe(fewer.units.readUnits);
    expect(more.units.dynamoCalls - more.deletes).toBe(fewer.units.dynamoCalls - fewer.deletes);
  }, 240_000);

  it('successive scheduled runs reach a lost task past the first pages of 1,000 held slots', async () => {
    const first = await deepQueue(50, {
      scheduled: true,
      held: { count: 1_000, model: 'busy-model' },
      lost: true,
    });
    const lost = first.lost!;
    const runs = [first.report];
    // Its slot sorts last: the runs go on from the cursor until one checks it.
    const needed = Math.ceil(1_001 / (SWEEP_PAGES * SWEEP_PAGE));
    while (runs.length < needed) runs.push(await runPlacement(rt!.ctx, { sample: true }));
    expect(runs.slice(0, -1).flatMap((r) => r.requeued)).not.toContain(lost);
    expect(runs.at(-1)!.requeued).toEqual([lost]);
    // The next run starts over at the index's first page (the lost task's slot is gone).
    const again = await runPlacement(rt!.ctx, { sample: true });
    expect(again.requeued).toEqual([]);
  }, 240_000);
});
