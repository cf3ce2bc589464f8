/**
 * Issue 16: an image with more copies than one page (ROLLOUT_PAGE) gets new limits on every copy:
 * the request updates its page and answers for it, the rest follow in `resources.rollout` links.
 * Each copy is sent one update, a copy started meanwhile gets the limits from its start, a later
 * change overtakes an earlier one, and the service's logs come a page of copies at a time. Three
 * scripted agents over the embedded runtime; counts, never timings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';
import type { MemoryQueue } from '../../../functions/adapters/memory-queue.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { encodeCursor } from '../../../functions/orchestrator/instance-pages.js';
import { getService } from '../../../functions/orchestrator/model.js';
import { PENDING_LOOK_SECONDS, ROLLOUT_PAGE, rolloutLink } from '../../../functions/orchestrator/rollout.js';
import { serviceId } from '../../../functions/orchestrator/services.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  COMMAND_WAIT_MS: '10000',
};

const IMAGE = 'rollout/worker:1';
const COPIES = 120;
const enc = encodeURIComponent;

interface Instance {
  id: string;
  status: string;
  resources: Record<string, string>;
}

describe('a limits change over more copies than one page (embedded runtime, scripted agents)', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];

  const updatesOf = () =>
    agents.flatMap((a) => a.seen.flatMap((e) => (e.command.type === 'container.update' ? [e.command] : [])));
  const instances = async (): Promise<Instance[]> => {
    const res = await call(rt.url, 'GET', `/containers/${enc(IMAGE)}/instances`);
    expect(res.status).toBe(200);
    return res.body.instances as Instance[];
  };
  const image = async () =>
    ((await call(rt.url, 'GET', '/images')).body.images as { image: string; rollout?: unknown }[]).find(
      (i) => i.image === IMAGE,
    )!;

  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    for (const name of ['w1', 'w2', 'w3']) {
      const agent = new ScriptedAgent(rt.url, name, { cpuCount: 32, memoryMb: 65_536 });
      await agent.register();
      await agent.heartbeat();
      agent.start(300);
      agents.push(agent);
    }
    for (let started = 0; started < COPIES; started += 60) {
      const res = await call(rt.url, 'POST', `/containers/${enc(IMAGE)}/start`, {
        count: 60,
        resources: { cpu_limit: '0.1' },
      });
      expect(res.status).toBe(200);
    }
    await eventually(async () => {
      const all = await instances();
      expect(all.filter((i) => i.status === 'running')).toHaveLength(COPIES);
    }, 30_000);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await rt?.stop();
  });

  it('updates a page in the request, the rest in the background: every copy once, a copy started meanwhile by its start', async () => {
    const before = (await instances()).map((i) => i.id).sort();
    const res = await call(rt.url, 'PUT', `/containers/${enc(IMAGE)}/resources`, {
      cpu_limit: '0.2',
      memory_limit: '256m',
    });
    expect(res.status).toBe(200);
    // The first page by id, answered for; about how many are left to the rollout.
    expect([...res.body.updated].sort()).toEqual(before.slice(0, ROLLOUT_PAGE));
    expect(res.body.pending).toBe(COPIES - ROLLOUT_PAGE);
    // Started while the rollout runs: the image's record has the new limits already.
    const more = await call(rt.url, 'POST', `/containers/${enc(IMAGE)}/start`, { count: 3 });
    expect(more.status).toBe(200);
    const started = more.body.started as string[];

    await eventually(async () => {
      const all = await instances();
      expect(all).toHaveLength(COPIES + 3);
      for (const i of all) expect(i.resources).toMatchObject({ cpu_limit: '0.2', memory_limit: '256m' });
      expect((await image()).rollout).toEqual({
        started_at: expect.any(String),
        updated: expect.any(Number),
        finished_at: expect.any(String),
      });
    }, 30_000);
    const sent = updatesOf();
    // One update for each copy there was, none for the copies started since.
    expect(sent.map((c) => c.instanceId).sort()).toEqual(before);
    expect(sent.every((c) => c.cpuLimit === 0.2 && c.memoryLimitMb === 256)).toBe(true);
    const starts = agents.flatMap((a) =>
      a.seen.flatMap((e) =>
        e.command.type === 'container.start' && started.includes(e.command.spec.instanceId)
          ? [e.command.spec]
          : [],
      ),
    );
    expect(starts.map((s) => [s.cpuLimit, s.memoryLimitMb])).toEqual(started.map(() => [0.2, 256]));
    // The record counted every copy it gave the limits, some perhaps started since.
    const rollout = (await image()).rollout as { updated: number };
    expect(rollout.updated).toBeGreaterThanOrEqual(COPIES);
    expect(rollout.updated).toBeLessThanOrEqual(COPIES + 3);
  }, 60_000);

  it('a link delivered again (a crash before its next was sent) sends nothing twice and counts nothing twice', async () => {
    const earlier = new Set(updatesOf());
    const rollout = (await image()).rollout;
    const ids = (await instances()).map((i) => i.id).sort();
    const service = (await getService(rt.ctx, IMAGE))!;
    // The second page again, and (its next link, sent again) the pages after it.
    await rolloutLink(rt.ctx, {
      imageId: IMAGE,
      rollout: service.rollout!.id,
      cursor: encodeCursor({ i: IMAGE, a: ids[ROLLOUT_PAGE - 1]! }),
    });
    // Its links done (waiting or in flight until their handler returns).
    await eventually(() => expect((rt.ctx.queue as MemoryQueue).depth(EVENTS_QUEUE)).toBe(0));
    expect(updatesOf().filter((c) => !earlier.has(c))).toEqual([]);
    expect((await image()).rollout).toEqual(rollout);
  });

  it('a later change overtakes an earlier one: every copy ends with the later limits', async () => {
    const earlier = new Set(updatesOf());
    const first = await call(rt.url, 'PUT', `/containers/${enc(IMAGE)}/resources`, { cpu_limit: '0.3' });
    const second = await call(rt.url, 'PUT', `/containers/${enc(IMAGE)}/resources`, { cpu_limit: '0.4' });
    expect([first.status, second.status]).toEqual([200, 200]);
    await eventually(async () => {
      const all = await instances();
      for (const i of all) expect(i.resources).toMatchObject({ cpu_limit: '0.4', memory_limit: '256m' });
      expect((await image()).rollout).toMatchObject({ finished_at: expect.any(String) });
    }, 30_000);
    const sent = updatesOf().filter((c) => !earlier.has(c));
    const ids = (await instances()).map((i) => i.id);
    // Each copy got the later limits once, and the earlier at most once.
    for (const id of ids) {
      const mine = sent.filter((c) => c.instanceId === id);
      expect(mine.filter((c) => c.cpuLimit === 0.4)).toHaveLength(1);
      expect(mine.filter((c) => c.cpuLimit === 0.3).length).toBeLessThanOrEqual(1);
    }
  }, 60_000);

  it('a copy still starting gets the limits once it runs, after its start', async () => {
    const PENDING = 'rollout/starting:1';
    const w1 = agents[0]!;
    await w1.stop();
    // Placed on the stopped agent: its start stays unanswered until the agent polls again.
    const starting = call(rt.url, 'POST', `/containers/${enc(PENDING)}/start`, {
      count: 1,
      resources: { cpu_limit: '0.1' },
      node_id: w1.nodeId,
    });
    const copy = await eventually(async () => {
      const res = await call(rt.url, 'GET', `/containers/${enc(PENDING)}/instances`);
      // A pending copy shows as the engine's `created`.
      expect(res.body.instances).toEqual([expect.objectContaining({ status: 'created' })]);
      return res.body.instances[0] as Instance;
    });
    const res = await call(rt.url, 'PUT', `/containers/${enc(PENDING)}/resources`, { cpu_limit: '0.6' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ updated: [], pending: 1 });
    w1.start(300);
    expect([200, 202]).toContain((await starting).status);
    await eventually(
      async () => {
        const res = await call(rt.url, 'GET', `/containers/${enc(PENDING)}/instances`);
        expect(res.body.instances).toEqual([
          expect.objectContaining({ id: copy.id, status: 'running', resources: { cpu_limit: '0.6' } }),
        ]);
      },
      (PENDING_LOOK_SECONDS + 10) * 1000,
    );
    const mine = w1.seen.filter(
      (e) =>
        (e.command.type === 'container.start' && e.command.spec.instanceId === copy.id) ||
        (e.command.type === 'container.update' && e.command.instanceId === copy.id),
    );
    expect(mine.map((e) => e.command.type)).toEqual(['container.start', 'container.update']);
    expect(mine[1]!.command).toMatchObject({ cpuLimit: 0.6 });
  }, 40_000);

  it("pages through the service's logs, every copy once", async () => {
    const logs: { container_id: string; logs?: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { logs: typeof logs; next_cursor: string | null } } = await call(
        rt.url,
        'GET',
        `/api/swarm/services/${serviceId(IMAGE)}/logs?tail=5${cursor ? `&cursor=${enc(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.logs.length).toBeLessThanOrEqual(50);
      logs.push(...res.body.logs);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    const ids = (await instances()).map((i) => i.id).sort();
    expect(pages).toBe(Math.ceil(ids.length / 50));
    expect(logs.map((l) => l.container_id).sort()).toEqual(ids);
    expect(logs.every((l) => l.logs?.includes('line 1'))).toBe(true);
    const bad = await call(rt.url, 'GET', `/api/swarm/services/${serviceId(IMAGE)}/logs?cursor=nope`);
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({
      detail: [expect.objectContaining({ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor' })],
    });
  });

  it('an unknown image or service is a 404', async () => {
    const put = await call(rt.url, 'PUT', `/containers/${enc('no/such:1')}/resources`, { cpu_limit: '1' });
    const logs = await call(rt.url, 'GET', '/api/swarm/services/svc-nosuch/logs');
    for (const r of [put, logs]) {
      expect(r.status).toBe(404);
      expect(r.body).toEqual({ detail: expect.any(String) });
    }
  });
});
