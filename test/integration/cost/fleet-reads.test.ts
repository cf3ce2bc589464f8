/**
 * Issue 16: the live pushes (/ws/metrics, /ws/doctor), a global service's reconcile and GET
 * /metrics read a bounded share of the fleet per invocation, the same at 200 and at 800 nodes
 * (node records loaded straight into the store around registered simulated nodes; every port
 * metered). Each chain is also run through the runtime's own events to show it covers every node
 * once. Counts, never timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { operationUnits, startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { loadNodeRecords } from '../../../bench/cost/load-nodes.js';
import { call } from '../../harness/scripted-agent.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { SHARDS, nodeShard } from '../../../functions/nodes/node-records.js';
import { pushLive, pushShard, type PushLink } from '../../../functions/realtime/push.js';
import type { MetricsMessage, DoctorMessage } from '../../../functions/realtime/messages.js';
import { changeService, nextService } from '../../../functions/orchestrator/desired-state.js';
import {
  getService,
  imageInstances,
  serviceSlots,
  type ServiceItem,
  type SlotItem,
} from '../../../functions/orchestrator/model.js';
import { fleetKeys, keys } from '../../../functions/core/keys.js';
import { reconcileGlobalFrom } from '../../../functions/orchestrator/reconciler.js';
import { renderMetrics } from '../../../functions/observability/prometheus.js';

/** A WebSocket client that keeps every frame it gets. */
function subscribe(
  fleet: Fleet,
  path: string,
): Promise<{ frames: Record<string, unknown>[]; ws: WebSocket }> {
  const ws = new WebSocket(`${fleet.rt.url.replace(/^http/, 'ws')}${path}`);
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (m) => frames.push(JSON.parse(String(m)) as Record<string, unknown>));
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => resolve({ frames, ws }));
  });
}

const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('reads per invocation independent of the fleet size: pushes, global reconcile, /metrics', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  const BUDGET = 40;

  /** The largest read units (and calls) one invocation of `run` spent, over every link of every shard. */
  async function perLink<T>(
    f: Fleet,
    first: (shard: number) => T,
    run: (link: T) => Promise<{ next?: T | undefined }>,
  ): Promise<{ maxRead: number; maxCalls: number; links: number }> {
    let maxRead = 0;
    let maxCalls = 0;
    let links = 0;
    for (const shard of SHARDS) {
      let link: T | undefined = first(shard);
      while (link) {
        f.meter.reset();
        const label = `link ${links++}`;
        const current: T = link;
        const out = await f.meter.within(label, () => run(current));
        const units = operationUnits(f.meter.total((e) => e.label === label));
        maxRead = Math.max(maxRead, units.read_units);
        maxCalls = Math.max(maxCalls, units.dynamo_calls);
        link = out.next;
      }
    }
    return { maxRead, maxCalls, links };
  }

  async function pushAt(extra: number) {
    fleet = await startFleet({
      nodes: 2,
      profile: 'idle',
      hardware: { kind: 'gpu', gpus: 1 },
      env: { WS_PUSH_INTERVAL_SECONDS: '3600' },
    });
    const f = fleet;
    const ctx = f.rt.ctx;
    await loadNodeRecords(f, extra, 'push');
    await f.settle();
    const total = extra + 2;
    const metrics = await subscribe(f, '/ws/metrics');
    const doctor = await subscribe(f, '/ws/doctor');
    // The first frames of each (a push of its own, to it alone).
    await until(() => metrics.frames.length > 0 && doctor.frames.length > 0, 'first frames');
    await f.settle();

    // The periodic push through the runtime's events: the root reads its budget, the shards' chains the rest.
    metrics.frames.length = 0;
    doctor.frames.length = 0;
    f.meter.reset();
    const root = await f.meter.within('push root', () => pushLive(ctx, { budget: BUDGET }));
    const rootUnits = operationUnits(f.meter.total((e) => e.label === 'push root'));
    await f.settle();
    const lastOf = (frames: Record<string, unknown>[]) => frames.filter((x) => x.last === true).length;
    await until(
      () => lastOf(metrics.frames) === SHARDS.length && lastOf(doctor.frames) === SHARDS.length,
      'every chain',
    );
    const links = f.meter.count('event ws.push.shard', 'event');
    const named = (metrics.frames as unknown as MetricsMessage[]).flatMap((x) => Object.keys(x.nodes));
    const doctorFrames = doctor.frames as unknown as DoctorMessage[];

    // Each link alone, driven by hand: what one invocation reads.
    const at = ctx.now();
    const per = await perLink<PushLink>(
      f,
      (shard) => ({ shard, link: 0, at, channels: ['metrics', 'doctor'], budget: BUDGET }),
      (link) => pushShard(ctx, link),
    );
    metrics.ws.close();
    doctor.ws.close();
    return { total, root, rootUnits, links, named, doctorFrames, per };
  }

  it('a /ws/metrics and /ws/doctor push: each invocation reads at most its budget; the chains name every node once', async () => {
    const small = await pushAt(198);
    const large = await pushAt(798);
    for (const run of [small, large]) {
      expect(run.root.fannedOut).toBe(true);
      expect(run.root.read).toBeLessThanOrEqual(BUDGET + 1);
      expect(new Set(run.named).size).toBe(run.total);
      expect(run.named).toHaveLength(run.total);
      // Every doctor frame has the health report; every node is online, so no problems.
      for (const d of run.doctorFrames)
        expect(d).toMatchObject({ type: 'doctor', health: { status: 'healthy' } });
      expect(run.doctorFrames.flatMap((d) => d.problems)).toEqual([]);
      expect(run.links).toBeGreaterThanOrEqual(Math.ceil((2 * run.total) / BUDGET) - SHARDS.length);
    }
    // More links for the larger fleet, each reading no more than at the smaller one.
    expect(large.links).toBeGreaterThan(small.links);
    expect(large.per.links).toBeGreaterThan(small.per.links);
    expect(large.per.maxRead).toBe(small.per.maxRead);
    expect(large.per.maxCalls).toBe(small.per.maxCalls);
    expect(large.rootUnits.read_units).toBe(small.rootUnits.read_units);
  }, 300_000);

  async function globalAt(extra: number) {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const f = fleet;
    const ctx = f.rt.ctx;
    await loadNodeRecords(f, extra, 'global');
    await f.settle();
    const image = 'reads/exporter:1';
    await changeService(ctx, image, async (current) => ({
      next: { ...nextService(ctx, image, current, 1, {}), global: true },
      wanted: 0,
    }));
    const service = (await getService(ctx, image)) as ServiceItem;
    expect(service.global).toBe(true);
    // Each link by hand: a copy placed on every node, BUDGET records an invocation.
    const first = await perLink(
      f,
      (shard) => ({ shard, link: 0, counted: 0, budget: BUDGET }),
      (link) => reconcileGlobalFrom(ctx, service, link, false),
    );
    const placed = (await imageInstances(ctx, image)).length;
    // Again, with every copy in place: nothing to do, the same bounded reads.
    const again = await perLink(
      f,
      (shard) => ({ shard, link: 0, counted: 0, budget: BUDGET }),
      (link) => reconcileGlobalFrom(ctx, service, link, false),
    );
    const count = (await getService(ctx, image))?.desiredCount;
    // Through the runtime's events (the minute's reconcile of the image): the chains, each node once.
    f.meter.reset();
    await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'reconcile', imageId: image }));
    await f.settle();
    const links = f.meter.count('event reconcile.global', 'event');
    const afterEvents = (await imageInstances(ctx, image)).length;
    return { total: extra + 2, first, again, placed, count, links, afterEvents };
  }

  it("a global service's reconcile: each invocation reads a page of nodes; every node gets one copy", async () => {
    const small = await globalAt(198);
    const large = await globalAt(798);
    for (const run of [small, large]) {
      expect(run.placed).toBe(run.total);
      expect(run.afterEvents).toBe(run.total);
      expect(run.count).toBe(run.total);
    }
    // The root read 1,000 records: 200 nodes fit it, 800 go on in chains.
    expect(small.links).toBe(0);
    expect(large.links).toBeGreaterThan(0);
    expect(large.first.links).toBeGreaterThan(small.first.links);
    // Per invocation: the page, its nodes' META and copies, their slots; not the fleet.
    expect(large.again.maxCalls).toBeLessThanOrEqual(small.again.maxCalls + 2);
    expect(large.again.maxRead).toBe(small.again.maxRead);
    expect(large.first.maxRead).toBe(small.first.maxRead);
  }, 300_000);

  it('a global service placed under ordinal slots before: its copies are adopted, not replaced, and the old slots go', async () => {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    await loadNodeRecords(fleet, 18, 'adopt');
    const image = 'reads/adopt:1';
    await changeService(ctx, image, async (current) => ({
      next: { ...nextService(ctx, image, current, 1, {}), global: true },
      wanted: 0,
    }));
    const service = (await getService(ctx, image)) as ServiceItem;
    const first = await reconcileGlobalFrom(ctx, service, { shard: 0, link: 0, counted: 0 }, true);
    expect(first.placed).toHaveLength(20);
    // As the layout before left them: one slot per ordinal, none per node.
    const copies = await imageInstances(ctx, image);
    for (const [i, c] of copies.entries()) {
      const own = fleetKeys.globalSlot(image, nodeShard(c.nodeId), c.nodeId);
      const slot = (await ctx.store.get<SlotItem>(own.pk, own.sk))!;
      await ctx.store.delete(own.pk, own.sk);
      await ctx.store.put({ ...slot, ...fleetKeys.serviceSlot(image, i), ordinal: i });
    }
    const again = await reconcileGlobalFrom(ctx, service, { shard: 0, link: 0, counted: 0 }, true);
    expect(again.placed).toEqual([]);
    expect(again.retired).toEqual([]);
    expect((await imageInstances(ctx, image)).map((c) => c.instanceId).sort()).toEqual(
      copies.map((c) => c.instanceId).sort(),
    );
    // Each copy holds its node's slot again; the next run drops the ordinal slots.
    await reconcileGlobalFrom(ctx, service, { shard: 0, link: 0, counted: 0 }, true);
    const slots = await serviceSlots(ctx, image);
    expect(slots).toHaveLength(20);
    expect(slots.every((s) => s.sk.startsWith('SLOT#N#'))).toBe(true);
  }, 120_000);

  /** `perNode` running service containers on each loaded node, as the orchestrator stores them. */
  async function loadInstances(f: Fleet, ids: string[], perNode: number) {
    const image = 'metrics-bench/web:1';
    const items = ids.flatMap((nodeId) =>
      Array.from({ length: perNode }, (_, i) => {
        const instanceId = `inst-${nodeId}-${i}`;
        return {
          ...keys.instance(instanceId),
          ...keys.instanceIndexes(image, nodeId, instanceId),
          instanceId,
          imageId: image,
          nodeId,
          name: `web-${i}`,
          status: 'running',
          ordinal: i,
        };
      }),
    );
    // Their service, which the main target once listed to read every copy of.
    if (perNode)
      await f.rt.ctx.store.put({ ...keys.service(image), ...keys.servicesIndex(image), imageId: image });
    for (let i = 0; i < items.length; i += 50)
      await Promise.all(items.slice(i, i + 50).map((item) => f.rt.ctx.store.put(item)));
  }

  async function scrapeAt(extra: number, instancesPerNode = 0) {
    fleet = await startFleet({
      nodes: 2,
      profile: 'idle',
      hardware: { kind: 'gpu', gpus: 1 },
      // Pages of 20 nodes: several a shard at both sizes.
      env: { METRICS_PAGE_RECORDS: '40' },
    });
    const f = fleet;
    const ctx = f.rt.ctx;
    const { ids } = await loadNodeRecords(f, extra, 'prom');
    await loadInstances(f, ids, instancesPerNode);
    await f.settle();
    // The sweep cuts the pages.
    await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
    await f.settle();
    f.meter.reset();
    const main = await f.meter.within('scrape', () => renderMetrics(ctx));
    const mainUnits = operationUnits(f.meter.total((e) => e.label === 'scrape'));
    const pagesOf = (shard: number) =>
      Number(new RegExp(`fleet_node_series_pages\\{shard="${shard}"\\} (\\d+)`).exec(main.body)?.[1]);
    const seen: string[] = [];
    let maxRead = 0;
    let pages = 0;
    let running = 0;
    for (const shard of SHARDS) {
      const n = pagesOf(shard);
      expect(n).toBeGreaterThan(0);
      for (let page = 0; page <= n; page++) {
        f.meter.reset();
        const label = `page ${shard}.${page}`;
        const { body } = await f.meter.within(label, () => renderMetrics(ctx, { shard, page }));
        maxRead = Math.max(maxRead, operationUnits(f.meter.total((e) => e.label === label)).read_units);
        const up = [...body.matchAll(/^fleet_node_up\{node_id="([^"]+)"/gm)].map((m) => m[1]!);
        // One past the last page: empty.
        if (page === n) expect(up).toEqual([]);
        else pages++;
        seen.push(...up);
        for (const m of body.matchAll(/^fleet_node_containers\{[^}]*state="running"\} (\d+)$/gm))
          running += Number(m[1]);
      }
    }
    // Through the route: a page, and the two parameters only together.
    const res = await call(f.rt.url, 'GET', '/metrics?shard=0&page=0');
    expect(res.status).toBe(200);
    expect((await call(f.rt.url, 'GET', '/metrics?shard=0')).status).toBe(422);
    expect((await call(f.rt.url, 'GET', '/metrics?shard=9&page=0')).status).toBe(422);
    return { total: extra + 2, ids, main: main.body, mainUnits, seen, maxRead, pages, running };
  }

  it('GET /metrics: fleet series from the aggregate, per-node series in pages the sweep cut, each node once', async () => {
    const bare = await scrapeAt(198);
    await fleet!.stop();
    fleet = undefined;
    const small = await scrapeAt(198, 2);
    await fleet!.stop();
    fleet = undefined;
    const large = await scrapeAt(798, 2);
    for (const run of [small, large]) {
      expect(new Set(run.seen).size).toBe(run.total);
      expect(run.seen).toHaveLength(run.total);
      // The main target has no per-node series, and the node counts the sweep made.
      expect(run.main).not.toMatch(/^fleet_node_up\{/m);
      expect(run.main).toContain(`fleet_nodes{state="online"} ${run.total}`);
    }
    expect(large.pages).toBeGreaterThan(small.pages);
    expect(large.mainUnits.read_units).toBe(small.mainUnits.read_units);
    // Service containers follow the node pages: the main target reads none (0, 396 or 1,596 of
    // them, the same units), each page reads its nodes' own, and every one is counted once.
    expect(small.mainUnits.read_units).toBe(bare.mainUnits.read_units);
    expect(small.main).not.toMatch(/^fleet_containers\{/m);
    expect(bare.running).toBe(0);
    expect(small.running).toBe(2 * 198);
    expect(large.running).toBe(2 * 798);
    // A page: its share of a shard and those nodes' META, the same whatever the fleet.
    expect(large.maxRead).toBe(small.maxRead);
    expect(large.seen).toContain(large.ids[0]);
  }, 300_000);
});
