/**
 * Issue 16: the problems listing and GET /api/nodes/jetpack read the same at 200 and at 800 nodes.
 * The listing reads the problem markers (8 queries) and the few nodes they name, not the fleet;
 * jetpack reads the online-Jetson entries by name, so 100 offline Jetsons before the online one
 * cost nothing. Registered simulated nodes, the rest loaded as records behind them; every port
 * metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '../../../bench/cost/fleet.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';
import { loadedFleet, measureRequest, withFleet, type Measured } from '../../harness/read-units.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { ensureIndexed } from '../../../functions/nodes/address-index.js';
import { markNodeStopped } from '../../../functions/nodes/node-stop.js';
import { registerNode } from '../../../functions/nodes/registration.js';

const SMALL = 200;
const LARGE = 800;
const OFFLINE_JETSONS = 100;
const JETSON = { l4t: '35.4.1', jetpack: '5.1.2', cuda: '11.4', cudnn: '8.6.0', model: 'Jetson AGX Orin' };

const measureGet = (f: Fleet, path: string) => measureRequest(f.meter, f.rt.url, 'GET', path);

const sweep = async (f: Fleet) => {
  await f.rt.ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
  await f.settle();
};

describe('the problems listing reads the same at 200 and 800 nodes', () => {
  const at = new Map<number, { listing: Measured; stopped: string; disky: string }>();

  async function measureAt(total: number): Promise<void> {
    await withFleet(loadedFleet(total), async (f) => {
      const disky = new ScriptedAgent(f.rt.url, 'disky');
      try {
        // One node stopped (offline), one with a full disk; every other node is fine.
        const stopped = f.nodes[1]!.nodeId;
        await markNodeStopped(f.rt.ctx, stopped);
        await disky.register();
        disky.metrics = { diskUsedGb: 95, diskTotalGb: 100 };
        await disky.heartbeat();
        await sweep(f);
        // The first listing records when each was first seen; the second is what every later one reads.
        await measureGet(f, '/api/maintenance/problems');
        at.set(total, {
          listing: await measureGet(f, '/api/maintenance/problems'),
          stopped,
          disky: disky.nodeId,
        });
      } finally {
        await disky.stop();
      }
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it('reads no more at 800 nodes than at 200', () => {
    const small = at.get(SMALL)!.listing;
    const large = at.get(LARGE)!.listing;
    expect(small.status).toBe(200);
    expect(small.calls).toBeGreaterThan(0);
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });

  it('lists the stopped node offline and the full disk, nothing else', () => {
    for (const total of [SMALL, LARGE]) {
      const { listing, stopped, disky } = at.get(total)!;
      const problems = listing.body.problems as { node_id: string; type: string }[];
      expect(problems.map((p) => [p.node_id, p.type])).toEqual([
        [disky, 'disk_space'],
        [stopped, 'node_offline'],
      ]);
    }
  });
});

describe('jetpack finds the online Jetson behind 100 offline ones, reading the same at 200 and 800 nodes', () => {
  const at = new Map<number, { jetpack: Measured; online: string }>();

  async function measureAt(total: number): Promise<void> {
    await withFleet({ nodes: total, live: 1, profile: 'idle', hardware: { kind: 'jetson' } }, async (f) => {
      const ctx = f.rt.ctx;
      // Jetsons that sort before the online one (node-00000) by name, all offline.
      for (let i = 0; i < OFFLINE_JETSONS; i++) {
        const name = `a-off-${String(i).padStart(3, '0')}`;
        const { node } = await registerNode(ctx, {
          ...new ScriptedAgent('http://unused', name).registerBody(),
          jetson: JETSON,
        });
        await markNodeStopped(ctx, node.nodeId);
      }
      while (!(await ensureIndexed(ctx)));
      at.set(total, { jetpack: await measureGet(f, '/api/nodes/jetpack'), online: f.nodes[0]!.nodeId });
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it('answers the online Jetson, reading a few items whatever the fleet and the offline Jetsons', () => {
    const small = at.get(SMALL)!;
    const large = at.get(LARGE)!;
    for (const m of [small, large]) {
      expect(m.jetpack.status).toBe(200);
      expect(m.jetpack.body).toMatchObject({ node_id: m.online, jetpack_version: expect.any(String) });
    }
    expect(large.jetpack.read).toBe(small.jetpack.read);
    expect(large.jetpack.calls).toBe(small.jetpack.calls);
    // The upgrade pass's marker, one query of the online-Jetson entries, the node's liveness and its records.
    expect(small.jetpack.calls).toBeLessThanOrEqual(5);
  });
});
