/**
 * Issue 16: draining a node reads its own slot partition, not every held slot of the fleet.
 * Held slots of other nodes loaded straight into the store; metered through the store, units only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { submitTask } from '../../../functions/cluster/tasks.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { Meter } from '../../../functions/metering/meter.js';
import { meterContext } from '../../../functions/metering/metered-ports.js';
import { drainNode } from '../../../functions/nodes/drain.js';
import { getNode } from '../../../functions/nodes/node-model.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { loadHeldSlots } from '../../harness/held-slots.js';
import { GPU_WORKER, ScriptedAgent } from '../../harness/scripted-agent.js';
import { runPlacement } from '../../../functions/cluster/placement.js';

const X = 'SDXL_4GB_FP8.safetensors';

describe('drain reads', () => {
  let rt: Runtime | undefined;
  let agent: ScriptedAgent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await rt?.stop();
    rt = undefined;
  });

  /** One node running one task, `held` slots elsewhere; the drain metered. */
  async function drainWith(held: number) {
    const meter = new Meter();
    // Runs the events bring are held back: the test places the task itself.
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
    agent = new ScriptedAgent(rt.url, `drain-${held}`, { ...GPU_WORKER, models: [X], maxConcurrency: 2 });
    await agent.register();
    await agent.heartbeat();
    const task = await submitTask(ctx, {
      source: 'cluster',
      taskType: 'image_generation',
      model: X,
      parameters: { prompt: 'p' },
      priority: 0,
      priorityInput: 0,
    });
    expect((await runPlacement(ctx)).placed.map((p) => p.taskId)).toEqual([task.taskId]);
    await loadHeldSlots(ctx, held, X);
    const node = (await getNode(ctx, agent.nodeId!))!;
    meter.reset();
    const report = await meter.within('drain', () => drainNode(ctx, node));
    return { report, taskId: task.taskId, units: meter.total((e) => e.label === 'drain') };
  }

  it('moves the node’s task and reads the same with 10 and 1,000 slots held elsewhere', async () => {
    const few = await drainWith(10);
    expect(few.report.moved.map((m) => m.id)).toEqual([few.taskId]);
    await agent?.stop();
    agent = undefined;
    await rt?.stop();
    rt = undefined;
    const many = await drainWith(1_000);
    expect(many.report.moved.map((m) => m.id)).toEqual([many.taskId]);
    expect(many.units.readUnits).toBe(few.units.readUnits);
    expect(many.units.dynamoCalls).toBe(few.units.dynamoCalls);
  }, 180_000);
});
