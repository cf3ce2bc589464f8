/**
 * Issue 16: a rebalance plans over a window of the fleet (each model's first holders from the
 * residency index, a page of free nodes, their own held slots), not the fleet: the same read units
 * at 200 nodes with 60 tasks running elsewhere as at 800 nodes with 400. Two nodes hold X (the
 * control plane's record), Y is queued for and resident nowhere; two nodes are registered simulated
 * agents, the rest loaded as records; every port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadHeldSlots } from '../../harness/held-slots.js';
import { expectSameReads, loadedFleet, measureRequest, withFleet } from '../../harness/read-units.js';
import type { Measured } from '../../harness/read-units.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { setNodeModels } from '../../../functions/cluster/workers.js';
import { countTransition } from '../../../functions/cluster/task-counts.js';
import { NODE_SHARDS, nodeShard } from '../../../functions/nodes/node-records.js';

const SMALL = { nodes: 200, heldElsewhere: 60 };
const LARGE = { nodes: 800, heldElsewhere: 400 };
const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';
/** What the slots elsewhere run: a model outside the catalogue, on nodes outside the store. */
const TEXT = 'llama-3-8b';
const QUEUED_Y = 3;

/**
 * Two loaded nodes (bench/cost/load-nodes.ts ids) of the last shard: outside the free page (shard 0's
 * first nodes), so the window is the same set of nodes at both sizes whatever the registered nodes' ids.
 */
function holders(loaded: number): [string, string] {
  const ids = Array.from({ length: loaded }, (_, i) => `zz-loaded-${String(i).padStart(6, '0')}`);
  const [a, b] = ids.filter((id) => nodeShard(id) === NODE_SHARDS - 1);
  return [a!, b!];
}

/** Dry runs first, the applied plan last (it changes what a later one would read). */
const RUNS = [
  // Before Y is queued for: the holders alone, no free page.
  ['memory_optimized, dry run, nothing queued', { strategy: 'memory_optimized', dry_run: true }],
  ['memory_optimized, dry run', { strategy: 'memory_optimized', dry_run: true }],
  ['load_balanced, dry run', { strategy: 'load_balanced', dry_run: true }],
  ['memory_optimized, applied', { strategy: 'memory_optimized' }],
] as const;

describe('a rebalance reads the same at 200 nodes as at 800, whatever runs elsewhere', () => {
  const measured = new Map<number, Map<string, Measured>>();
  const ids = new Map<number, [string, string]>();

  async function measureAt(size: { nodes: number; heldElsewhere: number }) {
    await withFleet(loadedFleet(size.nodes), async (f) => {
      const ctx = f.rt.ctx;
      const [first, second] = holders(size.nodes - 2);
      await loadHeldSlots(ctx, size.heldElsewhere, TEXT);
      await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
      await f.settle();
      await setNodeModels(ctx, first, [X]);
      await setNodeModels(ctx, second, [X]);
      const out = new Map<string, Measured>();
      for (const [name, body] of RUNS) {
        if (name === RUNS[1][0]) {
          // Demand as the queue counts it: tasks queued for Y (the counters, not tasks the placement would take).
          for (let i = 0; i < QUEUED_Y; i++)
            await countTransition(
              ctx,
              { model: Y, priority: 0, taskType: 'inference', counted: true },
              undefined,
              'queued',
            );
        }
        out.set(name, await measureRequest(f.meter, f.rt.url, 'POST', '/cluster/rebalance', body));
        await f.settle();
      }
      measured.set(size.nodes, out);
      ids.set(size.nodes, [first, second]);
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
    // The figures for README (issue 16): read units per rebalance at each size.
    const figures = Object.fromEntries(
      RUNS.map(([name]) => [
        name,
        [SMALL, LARGE].map((s) => {
          const x = measured.get(s.nodes)!.get(name)!;
          return `${x.read} (${x.calls} calls)`;
        }),
      ]),
    );
    console.log(
      `rebalance reads (read units at ${SMALL.nodes} / ${LARGE.nodes} nodes): ${JSON.stringify(figures)}`,
    );
  }, 300_000);

  it.each(RUNS.map(([name]) => name))('%s reads no more at 800 nodes than at 200', (name) => {
    const small = measured.get(SMALL.nodes)!.get(name)!;
    const large = measured.get(LARGE.nodes)!.get(name)!;
    expectSameReads(small, large);
  });

  it('plans as before: the idle replica of X goes, Y goes where there is room', () => {
    for (const size of [SMALL, LARGE]) {
      const [firstId, secondId] = ids.get(size.nodes)!;
      const idle = measured.get(size.nodes)!.get('memory_optimized, dry run, nothing queued')!.body;
      expect(idle.operations).toEqual([
        {
          type: 'model_unload',
          worker_id: expect.any(String),
          model: X,
          reason: 'idle replica, nothing queued',
        },
      ]);
      const dry = measured.get(size.nodes)!.get('memory_optimized, dry run')!.body;
      const ops = dry.operations as { type: string; worker_id: string; model: string; reason: string }[];
      expect(dry).toMatchObject({ status: 'dry_run', dry_run: true, strategy: 'memory_optimized' });
      expect(ops).toHaveLength(2);
      // One replica of X stays.
      expect(ops[0]).toMatchObject({
        type: 'model_unload',
        model: X,
        reason: 'idle replica, nothing queued',
      });
      expect([firstId, secondId]).toContain(ops[0]!.worker_id);
      expect(ops[1]).toMatchObject({ type: 'model_load', model: Y, reason: 'queued for, resident nowhere' });
      const applied = measured.get(size.nodes)!.get('memory_optimized, applied')!.body;
      expect(applied).toMatchObject({ status: 'initiated', operations: dry.operations });
      // load_balanced gives Y, the only model queued for, every node of the window it fits on.
      const balanced = measured.get(size.nodes)!.get('load_balanced, dry run')!.body;
      const loads = (balanced.operations as { type: string; model: string }[]).filter(
        (o) => o.type === 'model_load' && o.model === Y,
      );
      expect(loads.length).toBeGreaterThan(1);
    }
  });
});
