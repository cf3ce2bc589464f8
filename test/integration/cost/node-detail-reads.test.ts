/**
 * Issue 16: GET /api/nodes/{node_id} (the console's node page) reads its node's records, the same
 * at 200 and at 800 nodes, by id and by name. Two registered simulated nodes, the rest loaded as
 * records; every port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { expectSameReads, loadedFleet, measureRequest, withFleet } from '../../harness/read-units.js';
import type { Measured } from '../../harness/read-units.js';

const SIZES = [200, 800] as const;
const REFS = ['id', 'name'] as const;

describe('one node reads the same at 200 and 800 nodes', () => {
  const measured = new Map<string, Measured>();

  beforeAll(async () => {
    for (const total of SIZES) {
      await withFleet(loadedFleet(total), async (f) => {
        await f.settle();
        const node = f.nodes[0]!;
        for (const ref of REFS) {
          const path = `/api/nodes/${ref === 'id' ? node.nodeId : node.name}`;
          const m = await measureRequest(f.meter, f.rt.url, 'GET', path);
          measured.set(`${total} ${ref}`, { ...m, body: { ...m.body, expected: node.nodeId } });
        }
      });
    }
  }, 300_000);

  it.each(REFS)('by %s: the node, no more read at 800 nodes than at 200', (ref) => {
    const small = measured.get(`200 ${ref}`)!;
    const large = measured.get(`800 ${ref}`)!;
    for (const m of [small, large]) expect(m.body.id).toBe(m.body.expected);
    expectSameReads(small, large);
  });
});
