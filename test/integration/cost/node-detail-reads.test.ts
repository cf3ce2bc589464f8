/**
 * Issue 16: GET /api/nodes/{node_id} (the console's node page) reads its node's records, the same
 * at 200 and at 800 nodes, by id and by name. Two registered simulated nodes, the rest loaded as
 * records; every port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { awsCharged, operationUnits, startFleet } from '../../../bench/cost/fleet.js';
import { call } from '../../harness/scripted-agent.js';
import { operationLabel } from '../../../functions/metering/metered-lambda.js';
import type { MeterEntry } from '../../../functions/metering/meter.js';

const SIZES = [200, 800] as const;
const REFS = ['id', 'name'] as const;

type Measured = { status: number; body: Record<string, unknown>; read: number; calls: number };

describe('one node reads the same at 200 and 800 nodes', () => {
  const measured = new Map<string, Measured>();

  beforeAll(async () => {
    for (const total of SIZES) {
      const f = await startFleet({
        nodes: total,
        live: 2,
        profile: 'idle',
        hardware: { kind: 'gpu', gpus: 1 },
      });
      try {
        await f.settle();
        const node = f.nodes[0]!;
        for (const ref of REFS) {
          f.meter.reset();
          const path = `/api/nodes/${ref === 'id' ? node.nodeId : node.name}`;
          const res = await call(f.rt.url, 'GET', path);
          const label = operationLabel('GET', path);
          const mine = (e: MeterEntry) => awsCharged(e) && e.label === label;
          measured.set(`${total} ${ref}`, {
            status: res.status,
            body: { ...(res.body as Record<string, unknown>), expected: node.nodeId },
            read: operationUnits(f.meter.total(mine)).read_units,
            calls: f.meter
              .list()
              .filter((e) => mine(e) && /^dynamo\.(get|query)/.test(e.kind))
              .reduce((n, e) => n + e.calls, 0),
          });
        }
      } finally {
        await f.stop();
      }
    }
  }, 300_000);

  it.each(REFS)('by %s: the node, no more read at 800 nodes than at 200', (ref) => {
    const small = measured.get(`200 ${ref}`)!;
    const large = measured.get(`800 ${ref}`)!;
    for (const m of [small, large]) {
      expect(m.status).toBe(200);
      expect(m.body.id).toBe(m.body.expected);
    }
    expect(small.calls).toBeGreaterThan(0);
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });
});
