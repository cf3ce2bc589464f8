/**
 * Issue 16: no request reads every container instance. The fleet counts (`/health/detailed`,
 * `/test/integration`), `GET /images`, the Swarm service list, a page of `GET /containers` and of
 * `GET /api/swarm/containers`, a lookup by the engine's container id, the problems listing and the
 * resume of one node's copies read the same with 50 and with 500 containers on other nodes (five
 * other images). Copies are written with the orchestrator's own `putInstance` (so they are counted
 * and keyed as a placement's are); every port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { operationUnits } from '../../../bench/cost/fleet.js';
import { call } from '../../harness/scripted-agent.js';
import { instanceItem } from '../../harness/instances.js';
import {
  expectSameReads,
  measureRequest,
  pagedIds,
  withFleet,
  type Measured,
} from '../../harness/read-units.js';
import { keys } from '../../../functions/core/keys.js';
import { putInstance, transitionInstance, type InstanceItem } from '../../../functions/orchestrator/model.js';
import type { InstanceStatus } from '../../../functions/orchestrator/plan.js';
import { resumeNodeCopies } from '../../../functions/orchestrator/resume.js';

const SMALL = 50;
const LARGE = 500;
const BULK_IMAGES = ['bulk-0:1', 'bulk-1:1', 'bulk-2:1', 'bulk-3:1', 'bulk-4:1'];
const TARGET = 'target:1';
/** The engine id of the target's first copy (a lookup takes 12 characters or more). */
const ENGINE_ID = 'feedc0ffee0123456789abcdef';

/** A running copy found by the engine's short id answers at once: a lookup, no command. */
const BY_ENGINE_ID = `POST /api/swarm/containers/${ENGINE_ID.slice(0, 12)}/start`;
const REQUESTS = [
  'GET /health/detailed',
  'GET /test/integration',
  'GET /images',
  'GET /api/swarm/services',
  'GET /containers?limit=5',
  // NODE_A: the first registered node, whose copies the answer holds.
  'GET /containers?node_id=NODE_A',
  'GET /api/swarm/containers?limit=5',
  BY_ENGINE_ID,
  'GET /api/maintenance/problems',
] as const;

function instance(imageId: string, nodeId: string, n: number, status: InstanceStatus): InstanceItem {
  const instanceId = `${imageId.replace(/\W/g, '')}-${nodeId}-${n}`;
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  return {
    ...instanceItem({ imageId, nodeId, instanceId, status, ordinal: n, at }),
    containerId: `${instanceId}-engine`,
  };
}

describe('requests about container instances read the same with 50 and 500 other copies', () => {
  const measured = new Map<number, Map<string, Measured>>();
  const resumed = new Map<number, { read: number; calls: number; resumed: number }>();
  let firstNode = '';
  const paged = new Map<string, string[]>();
  let expected: string[] = [];

  async function measureAt(others: number): Promise<void> {
    await withFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } }, async (f) => {
      const ctx = f.rt.ctx;
      const [a, b] = f.nodes.map((n) => n.nodeId) as [string, string];
      firstNode = a;
      for (const image of [...BULK_IMAGES, TARGET])
        await ctx.store.put({
          ...keys.service(image),
          ...keys.servicesIndex(image),
          imageId: image,
          desiredCount: 1,
          resources: {},
          ports: [],
          env: {},
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
        });
      // The target: two copies on `a` (one dead), one on `b`; the others on nodes no agent runs.
      const target = [
        { ...instance(TARGET, a, 0, 'running'), containerId: ENGINE_ID },
        instance(TARGET, a, 1, 'exited'),
        instance(TARGET, b, 2, 'running'),
      ];
      const bulk = Array.from({ length: others }, (_, n) =>
        instance(BULK_IMAGES[n % BULK_IMAGES.length]!, `other-${n % 25}`, n, 'running'),
      );
      for (let i = 0; i < bulk.length; i += 50)
        await Promise.all(bulk.slice(i, i + 50).map((inst) => putInstance(ctx, inst)));
      for (const inst of target) await putInstance(ctx, inst);
      await f.settle();

      const out = new Map<string, Measured>();
      for (const request of REQUESTS) {
        const [method, path] = request.split(' ') as ['GET' | 'POST', string];
        out.set(request, await measureRequest(f.meter, f.rt.url, method, path.replace('NODE_A', a)));
      }
      measured.set(others, out);

      if (others === SMALL) {
        // Every copy once, page after page (a removed one is left out), on both listings.
        await transitionInstance(ctx, bulk[0]!.instanceId, ['running'], 'removed');
        for (const path of ['/containers', '/api/swarm/containers']) {
          paged.set(path, await pagedIds(f.rt.url, `${path}?limit=7`, 'containers'));
          expect((await call(f.rt.url, 'GET', `${path}?cursor=not-a-cursor`)).status).toBe(400);
        }
        expected = [...bulk.slice(1), ...target].map((i) => i.instanceId).sort();
      }

      f.meter.reset();
      const n = await f.meter.within('resume', () => resumeNodeCopies(ctx, a));
      const units = operationUnits(f.meter.total((e) => e.label === 'resume'));
      resumed.set(others, { read: units.read_units, calls: units.dynamo_calls, resumed: n });
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it.each(REQUESTS)('%s reads no more with 500 other copies than with 50', (request) => {
    const small = measured.get(SMALL)!.get(request)!;
    const large = measured.get(LARGE)!.get(request)!;
    expectSameReads(small, large);
  });

  it('pages through every copy once, and refuses a malformed cursor', () => {
    expect(expected).toHaveLength(SMALL - 1 + 3);
    for (const path of ['/containers', '/api/swarm/containers']) {
      const ids = paged.get(path)!;
      expect(ids).toHaveLength(expected.length);
      expect([...ids].sort()).toEqual(expected);
    }
  });

  it("resuming one node's copies reads that node's copies only", () => {
    const small = resumed.get(SMALL)!;
    const large = resumed.get(LARGE)!;
    expect(small.calls).toBeGreaterThan(0);
    expect(large).toEqual(small);
    // Nothing waits on a command: nothing to resume.
    expect(large.resumed).toBe(0);
  });

  it('answers with every copy counted, a page and its cursor, the copy found by its engine id', () => {
    const large = measured.get(LARGE)!;
    const total = LARGE + 3;
    expect(large.get('GET /health/detailed')!.body).toMatchObject({
      components: { container_manager: { status: 'OK', message: `Managing ${total} containers` } },
    });
    expect(large.get('GET /test/integration')!.body).toMatchObject({
      tests: { container_listing: { status: 'PASS', message: `Found ${total} managed containers` } },
    });
    const images = large.get('GET /images')!.body.images as Record<string, unknown>[];
    expect(images.find((i) => i.image === TARGET)).toMatchObject({
      desired_count: 1,
      current_running: 2,
      total_instances: 3,
    });
    expect(images.find((i) => i.image === 'bulk-0:1')).toMatchObject({
      current_running: LARGE / 5,
      total_instances: LARGE / 5,
    });
    const services = large.get('GET /api/swarm/services')!.body as unknown as Record<string, unknown>[];
    expect(services.find((s) => s.image === TARGET)).toMatchObject({ running: 2 });
    for (const request of ['GET /containers?limit=5', 'GET /api/swarm/containers?limit=5']) {
      const page = large.get(request)!.body;
      expect(page.total).toBe(total);
      expect(page.containers).toHaveLength(5);
      expect(page.next_cursor).toEqual(expect.any(String));
    }
    const onA = large.get('GET /containers?node_id=NODE_A')!.body;
    expect((onA.containers as { id: string }[]).map((c) => c.id).sort()).toEqual(
      [0, 1].map((n) => `${TARGET.replace(/\W/g, '')}-${firstNode}-${n}`),
    );
    expect(onA).toMatchObject({ total: 2, next_cursor: null });
    expect(large.get(BY_ENGINE_ID)!.body).toEqual({
      started: true,
      container_id: `${TARGET.replace(/\W/g, '')}-${firstNode}-0`,
      status: 'running',
    });
    const problems = large.get('GET /api/maintenance/problems')!.body.problems as Record<string, unknown>[];
    expect(problems.filter((p) => p.type === 'container_exited')).toHaveLength(1);
  });
});
