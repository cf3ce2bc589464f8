/**
 * Issue 16: questions about models read the model's holders (the residency index), not the fleet:
 * the same read units at 200 nodes with 60 tasks running elsewhere as at 800 nodes with 400. Two registered simulated nodes hold a model each (the control plane's record), the
 * rest are loaded as records; every port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { operationUnits } from '../../../bench/cost/fleet.js';
import { loadHeldSlots } from '../../harness/held-slots.js';
import {
  chargedTo,
  expectSameReads,
  loadedFleet,
  measureRequest,
  withFleet,
  type Measured,
} from '../../harness/read-units.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { setNodeModels } from '../../../functions/cluster/workers.js';

/** Both past the queue's page of 50 running tasks (its `processing` list reads one page of them). */
const SMALL = { nodes: 200, heldElsewhere: 60 };
const LARGE = { nodes: 800, heldElsewhere: 400 };
const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';
/** What the slots elsewhere run: a text model, so no image-job or holder read sees them. */
const TEXT = 'llama-3-8b';

/** Method, path, body; in order (the unload last: it changes what the others read). */
const REQUESTS = [
  ['GET', '/api/vision/status'],
  ['GET', '/api/vision/models/available'],
  ['GET', '/models/assignments'],
  ['GET', '/api/vision/queue'],
  ['POST', '/api/vision/jobs/stop-all'],
  ['POST', '/models/unload', { model_name: Y }],
] as const;

describe('questions about models read the same at 200 nodes as at 800, whatever runs elsewhere', () => {
  const measured = new Map<number, Map<string, Measured>>();
  const names = new Map<number, [string, string, string, string]>();

  async function measureAt(size: { nodes: number; heldElsewhere: number }) {
    await withFleet(loadedFleet(size.nodes), async (f) => {
      const ctx = f.rt.ctx;
      const [first, second] = f.nodes as [(typeof f.nodes)[0], (typeof f.nodes)[0]];
      await loadHeldSlots(ctx, size.heldElsewhere, TEXT);
      // The sweep writes the fleet aggregate the node counts come from.
      await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
      await f.settle();
      await setNodeModels(ctx, first.nodeId, [X]);
      await setNodeModels(ctx, second.nodeId, [Y]);
      const out = new Map<string, Measured>();
      for (const [method, path, body] of REQUESTS) {
        out.set(`${method} ${path}`, await measureRequest(f.meter, f.rt.url, method, path, body));
        await f.settle();
      }
      measured.set(size.nodes, out);
      names.set(size.nodes, [first.name, second.name, first.nodeId, second.nodeId]);
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
    // The figures for README (issue 16): read units per request at each size.
    const figures = Object.fromEntries(
      REQUESTS.map(([m, p]) => [
        `${m} ${p}`,
        [SMALL, LARGE].map((s) => {
          const x = measured.get(s.nodes)!.get(`${m} ${p}`)!;
          return `${x.read} (${x.calls} calls)`;
        }),
      ]),
    );
    console.log(
      `model reads (read units at ${SMALL.nodes} / ${LARGE.nodes} nodes): ${JSON.stringify(figures)}`,
    );
  }, 300_000);

  it.each(REQUESTS.map(([m, p]) => `${m} ${p}`))('%s reads no more at 800 nodes than at 200', (key) => {
    const small = measured.get(SMALL.nodes)!.get(key)!;
    const large = measured.get(LARGE.nodes)!.get(key)!;
    expectSameReads(small, large);
  });

  it('answers with the holders and the fleet counted', () => {
    const large = measured.get(LARGE.nodes)!;
    const [firstName, secondName, , secondId] = names.get(LARGE.nodes)!;
    expect(large.get('GET /api/vision/status')!.body).toMatchObject({
      online_nodes: LARGE.nodes,
      offline_nodes: 0,
      busy_nodes: 0,
      models_loaded: { [X]: [firstName], [Y]: [secondName] },
    });
    const available = large.get('GET /api/vision/models/available')!.body.models as {
      name: string;
      loaded_on: string[];
    }[];
    expect(available.find((m) => m.name === X)!.loaded_on).toEqual([firstName]);
    expect(available.find((m) => m.name === Y)!.loaded_on).toEqual([secondName]);
    const assignments = large.get('GET /models/assignments')!.body.assignments as { name: string }[];
    expect(assignments.map((a) => a.name).sort()).toEqual([firstName, secondName].sort());
    // The processing list is one page of the held slots (the queue's default limit, 50).
    expect(large.get('GET /api/vision/queue')!.body.processing).toEqual([]);
    expect(large.get('POST /api/vision/jobs/stop-all')!.body).toMatchObject({ cancelled: 0 });
    expect(large.get('POST /models/unload')!.body).toMatchObject({ affected_workers: [secondId] });
  });
});

describe('a heartbeat writes the residency index only when its models change', () => {
  it('an unchanged beat writes no entry; a beat that adds or drops a model writes one', async () => {
    await withFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } }, async (f) => {
      const sim = f.nodes[0]!;
      const mine = chargedTo('POST', '/agent/heartbeat');
      /** One beat: its write units, and its writes by kind (the index's are updates and deletes). */
      const beat = async () => {
        f.meter.reset();
        await sim.heartbeat();
        await f.settle();
        const calls = (kind: string) =>
          f.meter
            .list()
            .filter((e) => mine(e) && e.kind === kind)
            .reduce((n, e) => n + e.calls, 0);
        return {
          writes: operationUnits(f.meter.total(mine)).write_units,
          updates: calls('dynamo.update'),
          deletes: calls('dynamo.delete'),
        };
      };
      const same = await beat();
      sim.servers.set(X, 'server-x');
      const added = await beat();
      const again = await beat();
      sim.servers.delete(X);
      const dropped = await beat();
      console.log(`heartbeat writes: ${JSON.stringify({ same, added, again, dropped })}`);
      expect(same.updates).toBe(0);
      expect(again.updates).toBe(0);
      // The entry made, then (the heartbeat its only reason) deleted: one write each.
      expect(added.updates).toBe(1);
      expect(dropped.updates).toBe(0);
      expect(dropped.deletes).toBe(1);
      expect(added.writes - same.writes).toBeLessThanOrEqual(2);
      expect(same.deletes).toBe(0);
    });
  }, 60_000);
});
