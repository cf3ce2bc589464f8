import { describe, expect, it } from 'vitest';
import { fleetKeys } from '../../../functions/core/keys.js';
import { emptyPart } from '../../../functions/nodes/fleet-aggregate.js';
import { COUNT_PROBE_RECORDS } from '../../../functions/nodes/fleet-counts.js';
import { loadedFleet, measureRequest, withFleet, type Measured } from '../../harness/read-units.js';

/**
 * A stalled sweep (its aggregate older than readers take) whose last aggregate counted a fleet past
 * COUNT_PROBE_RECORDS: the fleet figures come from it, not from every node. Loaded node records, no
 * sweep run; the aggregate written by hand, ten minutes old.
 */
const PATHS = ['/cluster/status', '/system/resources', '/health/detailed'] as const;
const SIZES = [200, 800];
// Two node-state records a node: the last aggregate counted a fleet past the probe.
const COUNTED = COUNT_PROBE_RECORDS / 2 + 1;

describe('fleet figures while the sweep has stalled', () => {
  it('read the same at two fleet sizes past the probe, and answer the last aggregate', async () => {
    const at = new Map<number, Map<string, Measured>>();
    for (const nodes of SIZES)
      await withFleet(loadedFleet(nodes), async (f) => {
        const ctx = f.rt.ctx;
        const old = ctx.now() - 10 * 60_000;
        await ctx.store.put({
          ...fleetKeys.fleetAggAll,
          ...emptyPart(),
          nodes: COUNTED,
          onlineNodes: 42,
          shard: -1,
          sweep: old,
          atMs: old,
          link: 0,
          done: true,
        });
        const out = new Map<string, Measured>();
        for (const path of PATHS) out.set(path, await measureRequest(f.meter, f.rt.url, 'GET', path));
        at.set(nodes, out);
      });
    const [small, large] = SIZES.map((n) => at.get(n)!);
    for (const path of PATHS) {
      const s = small!.get(path)!;
      const l = large!.get(path)!;
      expect(s.status, path).toBe(200);
      expect(l.read, path).toBe(s.read);
      expect(l.calls, path).toBe(s.calls);
    }
    console.log(Object.fromEntries(PATHS.map((p) => [p, [small!.get(p)!.read, large!.get(p)!.read]])));
    // The last aggregate's counts, not the loaded fleet's.
    expect(large!.get('/cluster/status')!.body).toMatchObject({ total_workers: COUNTED, active_workers: 42 });
  }, 300_000);
});
