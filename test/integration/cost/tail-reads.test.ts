/**
 * Issue 16: requests that answer a small thing read the same at 200 and at 800 nodes.
 * GET /api/swarm/status counts the fleet from the sweep's aggregate; GET /api/nodes/jetpack pages
 * the Jetson index and stops at the first online Jetson. A fleet of Jetsons: two registered
 * simulated nodes, the rest loaded as records behind them by name; every port is metered;
 * counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { expectSameReads, loadedFleet, measureRequest, withFleet } from '../../harness/read-units.js';
import type { Measured } from '../../harness/read-units.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { ensureIndexed } from '../../../functions/nodes/address-index.js';

const SMALL = 200;
const LARGE = 800;
const PATHS = ['/api/swarm/status', '/api/nodes/jetpack'] as const;

describe('small answers about the fleet read the same at 200 and 800 nodes', () => {
  const measured = new Map<number, Map<string, Measured>>();
  let firstJetson = '';

  async function measureAt(total: number): Promise<void> {
    await withFleet(loadedFleet(total, { hardware: { kind: 'jetson' } }), async (f) => {
      // The sweep writes the fleet aggregate the counts come from.
      await f.rt.ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
      await f.settle();
      // The address index's upgrade pass (nodes registered before it) is done once, before measuring.
      while (!(await ensureIndexed(f.rt.ctx)));
      const out = new Map<string, Measured>();
      for (const path of PATHS) out.set(path, await measureRequest(f.meter, f.rt.url, 'GET', path));
      measured.set(total, out);
      firstJetson = f.nodes.find((n) => n.name === 'node-00000')!.nodeId;
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it.each(PATHS)('GET %s reads no more at 800 nodes than at 200', (path) => {
    const small = measured.get(SMALL)!.get(path)!;
    const large = measured.get(LARGE)!.get(path)!;
    expectSameReads(small, large);
  });

  it('answers with the fleet counted and an online Jetson', () => {
    const large = measured.get(LARGE)!;
    expect(large.get('/api/swarm/status')!.body).toMatchObject({
      is_manager: true,
      nodes_count: LARGE + 1,
      managers_count: 1,
      workers_count: LARGE,
    });
    // The registered Jetsons sort first by name; the first of them is online.
    expect(large.get('/api/nodes/jetpack')!.body).toMatchObject({
      node_id: firstJetson,
      jetpack_version: expect.any(String),
    });
  });
});
