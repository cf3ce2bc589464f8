/**
 * Issue 16: the two requests that sent a command to every copy of an image. A global service has a
 * copy on every eligible node, so `PUT /containers/{imageId}/resources` and
 * `GET /api/swarm/services/{service_id}/logs` read and command the same with 120 and with 480
 * copies of it (one a loaded node): one page of copies a request, the rest of a rollout in
 * `resources.rollout` links of one page each. Loaded nodes never answer, so the requests answer
 * 202 after one look at their commands (COMMAND_WAIT_MS=0). Copies are written with the
 * orchestrator's own `putInstance`; every port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNodeRecords } from '../../../bench/cost/load-nodes.js';
import { call } from '../../harness/scripted-agent.js';
import {
  chargedTo,
  measureRequest,
  measureRun,
  withFleet,
  type Measured,
  type Reads,
} from '../../harness/read-units.js';
import { instanceItem } from '../../harness/instances.js';
import { keys } from '../../../functions/core/keys.js';
import { nodeCommands } from '../../../functions/nodes/commands.js';
import { encodeCursor } from '../../../functions/orchestrator/instance-pages.js';
import { ROLLOUT_PAGE, rolloutLink } from '../../../functions/orchestrator/rollout.js';
import { getService, putInstance } from '../../../functions/orchestrator/model.js';
import { serviceId } from '../../../functions/orchestrator/services.js';

const SMALL = 120;
const LARGE = 480;
const IMAGE = 'fanout/exporter:1';
const RESOURCES = `/containers/${encodeURIComponent(IMAGE)}/resources`;
const LOGS = `/api/swarm/services/${serviceId(IMAGE)}/logs`;

interface Sized {
  put: Measured & { sends: number };
  logs: Measured & { sends: number };
  /** container.update commands per copy once the rollout's links ran; the links' invocations. */
  updates: number[];
  links: number;
  /** One link from the second page: its reads and its sends (commands and the next link). */
  link: Reads & { sends: number };
  paged: string[];
  copies: string[];
  refused: { status: number; body: unknown }[];
  missing: { status: number; body: unknown }[];
}

describe("one page of an image's copies a request: resources and service logs the same at 120 and 480 copies", () => {
  const at = new Map<number, Sized>();

  async function measureAt(copies: number): Promise<void> {
    await withFleet(
      { nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 }, env: { COMMAND_WAIT_MS: '0' } },
      async (f) => {
        const ctx = f.rt.ctx;
        const loaded = await loadNodeRecords(f, copies, 'fanout');
        await ctx.store.put({
          ...keys.service(IMAGE),
          ...keys.servicesIndex(IMAGE),
          imageId: IMAGE,
          desiredCount: copies,
          global: true,
          resources: { cpu_limit: '0.5' },
          ports: [],
          env: {},
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
        });
        const items = loaded.ids.map((nodeId, n) => ({
          ...instanceItem({
            imageId: IMAGE,
            nodeId,
            instanceId: `fcopy-${String(n).padStart(4, '0')}`,
            status: 'running',
            ordinal: 0,
            at: '2026-01-01T00:00:00.000Z',
          }),
          resources: { cpu_limit: '0.5' },
        }));
        for (let i = 0; i < items.length; i += 50)
          await Promise.all(items.slice(i, i + 50).map((inst) => putInstance(ctx, inst)));
        await f.settle();

        const sends = (method: string, path: string) =>
          f.meter
            .list()
            .filter((e) => chargedTo(method, path)(e) && e.kind === 'sqs.send')
            .reduce((n, e) => n + e.calls, 0);
        const put = await measureRequest(f.meter, f.rt.url, 'PUT', RESOURCES, { cpu_limit: '1' });
        const putSends = sends('PUT', RESOURCES);
        // The rollout's links, one after the other through the runtime's own events (counted from
        // the request's reset meter: the first may run before the request answers).
        await f.settle();
        const links = f.meter.count('event resources.rollout', 'event');
        const updates = await Promise.all(
          items.map(
            async (i) =>
              (await nodeCommands(ctx, i.nodeId)).filter(
                (c) => c.type === 'container.update' && c.instanceId === i.instanceId,
              ).length,
          ),
        );
        // One link alone, from the second page (its copies never answered, so it sends them again).
        const rollout = (await getService(ctx, IMAGE))!.rollout!;
        const cursor = encodeCursor({ i: IMAGE, a: items[ROLLOUT_PAGE - 1]!.instanceId });
        const link = await measureRun(f.meter, 'link', () =>
          rolloutLink(ctx, { imageId: IMAGE, rollout: rollout.id, cursor }),
        );
        const linkSends = f.meter
          .list()
          .filter((e) => e.label === 'link' && e.kind === 'sqs.send')
          .reduce((n, e) => n + e.calls, 0);
        await f.settle();
        const logs = await measureRequest(f.meter, f.rt.url, 'GET', `${LOGS}?limit=20`);
        const logSends = sends('GET', LOGS);

        const paged: string[] = [];
        const refused: { status: number; body: unknown }[] = [];
        const missing: { status: number; body: unknown }[] = [];
        if (copies === SMALL) {
          let cursor: string | null = null;
          do {
            const res = await call(
              f.rt.url,
              'GET',
              `${LOGS}?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
            );
            expect(res.status).toBe(202);
            paged.push(...(res.body.containers as string[]));
            cursor = res.body.next_cursor as string | null;
          } while (cursor);
          for (const q of ['limit=0', 'limit=101', 'limit=x', 'cursor=not-a-cursor']) {
            const res = await call(f.rt.url, 'GET', `${LOGS}?${q}`);
            refused.push({ status: res.status, body: res.body });
          }
          for (const [method, path, body] of [
            ['GET', '/api/swarm/services/svc-nosuch/logs', undefined],
            ['PUT', `/containers/${encodeURIComponent('no/such:1')}/resources`, { cpu_limit: '1' }],
          ] as const) {
            const res = await call(f.rt.url, method, path, body);
            missing.push({ status: res.status, body: res.body });
          }
        }
        at.set(copies, {
          put: { ...put, sends: putSends },
          logs: { ...logs, sends: logSends },
          updates,
          links,
          link: { ...link, sends: linkSends },
          paged,
          copies: items.map((i) => i.instanceId),
          refused,
          missing,
        });
      },
    );
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 300_000);

  it('a resources change reads and commands one page of copies, the same at both sizes', () => {
    const small = at.get(SMALL)!;
    const large = at.get(LARGE)!;
    for (const s of [small, large]) {
      expect(s.put.status).toBe(202);
      expect(s.put.body.pending_commands).toHaveLength(ROLLOUT_PAGE);
      // The page's commands and the rollout's next link.
      expect(s.put.sends).toBe(ROLLOUT_PAGE + 1);
    }
    expect(small.put.body.pending).toBe(SMALL - ROLLOUT_PAGE);
    expect(large.put.body.pending).toBe(LARGE - ROLLOUT_PAGE);
    expect(small.put.calls).toBeGreaterThan(0);
    expect(large.put.read).toBe(small.put.read);
    expect(large.put.calls).toBe(small.put.calls);
  });

  it('its links give every copy the new limits once, each link a page: the same at both sizes', () => {
    for (const [copies, s] of at) {
      expect(s.updates).toEqual(s.copies.map(() => 1));
      expect(s.links).toBe(Math.ceil((copies - ROLLOUT_PAGE) / ROLLOUT_PAGE));
      expect(s.link.sends).toBe(ROLLOUT_PAGE + 1);
    }
    const small = at.get(SMALL)!.link;
    const large = at.get(LARGE)!.link;
    expect(small.calls).toBeGreaterThan(0);
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });

  it("a page of a service's logs reads and commands the same at both sizes", () => {
    const small = at.get(SMALL)!.logs;
    const large = at.get(LARGE)!.logs;
    for (const l of [small, large]) {
      expect(l.status).toBe(202);
      expect(l.body.pending_commands).toHaveLength(20);
      expect(l.body.containers).toHaveLength(20);
      expect(l.body.next_cursor).toEqual(expect.any(String));
      expect(l.sends).toBe(20);
    }
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });

  it("pages through every copy's logs once; bad paging is a 400, unknown ids a 404", () => {
    const s = at.get(SMALL)!;
    expect([...s.paged].sort()).toEqual(s.copies);
    for (const r of s.refused) {
      expect(r.status).toBe(400);
      expect(r.body).toEqual({
        detail: [expect.objectContaining({ loc: ['query', expect.stringMatching(/^(limit|cursor)$/)] })],
      });
    }
    for (const m of s.missing) {
      expect(m.status).toBe(404);
      expect(m.body).toEqual({ detail: expect.any(String) });
    }
  });
});
