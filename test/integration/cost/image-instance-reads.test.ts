/**
 * Issue 16: one image's copies are read a page at a time. A global service has a copy on every
 * eligible node, so `GET /containers/{imageId}/instances?limit=`, `GET /registry/endpoints?limit=`
 * and a `POST /start/container` that reuses a running copy read the same with 50 and with 500
 * copies of it (one a loaded node).
 * Copies are written with the orchestrator's own `putInstance`; every port is metered; counts,
 * never timings. The pages cover every copy once; a bad cursor is a 400 in the documented shape.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNodeRecords } from '../../../bench/cost/load-nodes.js';
import { call } from '../../harness/scripted-agent.js';
import {
  expectSameReads,
  measureRequest,
  pagedIds,
  withFleet,
  type Measured,
} from '../../harness/read-units.js';
import { keys } from '../../../functions/core/keys.js';
import { getNodeRecord } from '../../../functions/nodes/nodes.js';
import { putInstance, transitionInstance, type InstanceItem } from '../../../functions/orchestrator/model.js';
import { registerInstanceEndpoints } from '../../../functions/orchestrator/registry.js';

const SMALL = 50;
const LARGE = 500;
const IMAGE = 'pages/exporter:1';
const PATH = `/containers/${encodeURIComponent(IMAGE)}/instances`;
const ENDPOINTS = `/registry/endpoints?image_id=${encodeURIComponent(IMAGE)}`;
const REQUESTS = [
  { name: 'a page of the global image', method: 'GET' as const, path: `${PATH}?limit=20` },
  { name: "a page of the image's endpoints", method: 'GET' as const, path: `${ENDPOINTS}&limit=20` },
  {
    name: 'a start that reuses a running copy',
    method: 'POST' as const,
    path: '/start/container',
    body: { count: 1, resources: { image: IMAGE } },
  },
];

function copy(nodeId: string, n: number): InstanceItem {
  const instanceId = `gcopy-${String(n).padStart(4, '0')}`;
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, n % 60)).toISOString();
  return {
    ...keys.instance(instanceId),
    ...keys.instanceIndexes(IMAGE, nodeId, instanceId),
    instanceId,
    imageId: IMAGE,
    nodeId,
    name: `container-${instanceId}`,
    status: 'running',
    ordinal: 0,
    resources: { cpu_limit: '0.5' },
    reserve: { cpu: 0.5, memoryMb: 0, diskGb: 0, gpus: 0 },
    containerPorts: [9100],
    ports: [{ containerPort: 9100, hostPort: 9100, protocol: 'tcp' }],
    containerId: `${instanceId}-engine`,
    createdAt: at,
    updatedAt: at,
  };
}

describe("one image's copies read a page at a time: the same with 50 and 500 copies of a global service", () => {
  const measured = new Map<number, Map<string, Measured>>();
  let ids: string[] = [];
  let items0 = '';
  const paged: string[] = [];
  const endpoints: string[] = [];
  let whole: Record<string, unknown> = {};
  const refused: { status: number; body: unknown }[] = [];

  async function measureAt(copies: number): Promise<void> {
    await withFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } }, async (f) => {
      const ctx = f.rt.ctx;
      const loaded = await loadNodeRecords(f, copies, 'gpage');
      await ctx.store.put({
        ...keys.service(IMAGE),
        ...keys.servicesIndex(IMAGE),
        imageId: IMAGE,
        desiredCount: copies,
        global: true,
        resources: { cpu_limit: '0.5' },
        ports: [9100],
        env: {},
        createdAt: '2026-01-01T00:00:00.000Z',
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
      const items = loaded.ids.map((nodeId, n) => copy(nodeId, n));
      // Each copy running with its published port's endpoint, as a start's result leaves it.
      const withEndpoint = async (inst: InstanceItem) => {
        await putInstance(ctx, inst);
        await registerInstanceEndpoints(ctx, inst, (await getNodeRecord(ctx, inst.nodeId))!);
      };
      for (let i = 0; i < items.length; i += 50) await Promise.all(items.slice(i, i + 50).map(withEndpoint));
      await f.settle();

      const out = new Map<string, Measured>();
      for (const r of REQUESTS)
        out.set(r.name, await measureRequest(f.meter, f.rt.url, r.method, r.path, r.body));
      measured.set(copies, out);

      if (copies === SMALL) {
        endpoints.push(...(await pagedIds(f.rt.url, `${ENDPOINTS}&limit=7`, 'endpoints')));
        // Every copy once, page after page; a removed one is left out.
        await transitionInstance(ctx, items[0]!.instanceId, ['running'], 'removed');
        paged.push(...(await pagedIds(f.rt.url, `${PATH}?limit=7`, 'instances')));
        ids = items.slice(1).map((i) => i.instanceId);
        items0 = items[0]!.instanceId;
        whole = (await call(f.rt.url, 'GET', PATH)).body as Record<string, unknown>;
        // A malformed cursor, and one of another image's listing, are refused.
        const otherImage = Buffer.from(JSON.stringify({ i: 'other:1', a: 'gcopy-0001' })).toString(
          'base64url',
        );
        for (const bad of ['not-a-cursor', otherImage])
          for (const path of [`${PATH}?`, `${ENDPOINTS}&`]) {
            const res = await call(f.rt.url, 'GET', `${path}cursor=${encodeURIComponent(bad)}`);
            refused.push({ status: res.status, body: res.body });
          }
      }
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it.each(REQUESTS.map((r) => r.name))('%s reads no more with 500 copies than with 50', (name) => {
    const small = measured.get(SMALL)!.get(name)!;
    const large = measured.get(LARGE)!.get(name)!;
    expectSameReads(small, large);
  });

  it('answers a page with its cursor, and the reused copy', () => {
    const page = measured.get(LARGE)!.get('a page of the global image')!.body;
    const instances = page.instances as Record<string, unknown>[];
    expect(instances).toHaveLength(20);
    expect(page.next_cursor).toEqual(expect.any(String));
    // Every documented field, each copy's endpoint on its own node.
    expect(instances[0]).toEqual({
      id: 'gcopy-0000',
      status: 'running',
      endpoint: 'http://100.64.0.0:9100',
      resources: { cpu_limit: '0.5' },
      node_id: expect.any(String),
    });
    expect(new Set(instances.map((i) => i.node_id)).size).toBe(20);
    const eps = measured.get(LARGE)!.get("a page of the image's endpoints")!.body;
    expect(eps.endpoints).toHaveLength(20);
    expect(eps.next_cursor).toEqual(expect.any(String));
    expect((eps.endpoints as Record<string, unknown>[])[0]).toMatchObject({
      id: 'gcopy-0000-9100',
      image_id: IMAGE,
      host: '100.64.0.0',
      port: 9100,
      status: 'UP',
    });
    const started = measured.get(LARGE)!.get('a start that reuses a running copy')!.body;
    expect(started).toMatchObject({ ok: true, action: 'reused', image: IMAGE, status: 'running' });
  });

  it('pages through every copy once; a small image is one page; a bad cursor is a 400', () => {
    expect(paged).toHaveLength(SMALL - 1);
    expect([...paged].sort()).toEqual(ids);
    expect(whole.next_cursor).toBeNull();
    // Endpoints stay until their copy's removal is confirmed: every copy's, once.
    expect([...endpoints].sort()).toEqual([items0, ...ids].map((id) => `${id}-9100`));
    expect(whole.instances).toHaveLength(SMALL - 1);
    for (const r of refused) {
      expect(r.status).toBe(400);
      expect(r.body).toEqual({
        detail: [expect.objectContaining({ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor' })],
      });
    }
  });
});
