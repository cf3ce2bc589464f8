/**
 * Issue 16: a placement run reads the queue a page at a time in placement order and stops once
 * its free slots are taken, so what it reads follows free capacity, not the queue's depth.
 * Metered through the store (functions/metering), over the embedded runtime with a simulated node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { QUEUE_PAGE, runPlacement } from '../../../functions/cluster/placement.js';
import { queuedTasks, queueOrder, submitTask } from '../../../functions/cluster/tasks.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { Meter } from '../../../functions/metering/meter.js';
import { meterContext } from '../../../functions/metering/metered-ports.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { GPU_WORKER, ScriptedAgent } from '../../harness/scripted-agent.js';

const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';

describe('a placement run with a deep queue', () => {
  let rt: Runtime | undefined;
  let agent: ScriptedAgent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await rt?.stop();
    rt = undefined;
  });

  /**
   * `depth` queued tasks over two models and four priority levels (the first `blocked` of them,
   * the oldest, for a GPU type no node has), then one node with 2 free slots.
   */
  async function deepQueue(depth: number, blocked = 0) {
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
    let clock = ctx.now() - 3 * 3_600_000;
    for (let i = 0; i < depth; i += 50) {
      // Spread over hours so aging interleaves the levels; in parallel batches to load quickly.
      await Promise.all(
        Array.from({ length: Math.min(50, depth - i) }, (_, j) => {
          const priority = ((i + j) % 4) - 1;
          const at = (clock += 5_000);
          return submitTask(
            { ...ctx, now: () => at },
            {
              source: 'cluster',
              taskType: 'image_generation',
              model: (i + j) % 3 ? X : Y,
              parameters: { prompt: `deep ${i + j}` },
              priority: i + j < blocked ? 2 : priority,
              priorityInput: priority,
              ...(i + j < blocked ? { requirements: { gpuType: 'none here' } } : {}),
            },
          );
        }),
      );
    }
    agent = new ScriptedAgent(rt.url, `deep-${depth}`, { ...GPU_WORKER, models: [X, Y], maxConcurrency: 2 });
    await agent.register();
    await agent.heartbeat();
    const expected = queueOrder(await queuedTasks(ctx), ctx.now())
      .filter((t) => !t.requirements)
      .slice(0, 2);
    meter.reset();
    const report = await meter.within('run', () => runPlacement(ctx));
    return { report, expected, units: meter.total((e) => e.label === 'run') };
  }

  it('reads a page of 2,000 queued tasks for 2 free slots, and places the first two in order', async () => {
    const deep = await deepQueue(2_000);
    // The two tasks placement serves first (priority with aging, then age) are the two placed.
    expect(deep.report.placed.map((p) => p.taskId).sort()).toEqual(deep.expected.map((t) => t.taskId).sort());
    expect(deep.report.queueRead).toBe(QUEUE_PAGE);
    await agent!.stop();
    agent = undefined;
    await rt!.stop();
    rt = undefined;

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
    const run = await deepQueue(200, 60);
    expect(run.report.placed.map((p) => p.taskId).sort()).toEqual(run.expected.map((t) => t.taskId).sort());
    expect(run.report.queueRead).toBe(3 * QUEUE_PAGE);
  }, 180_000);
});
