/**
 * `npm run bench:scale -- [--nodes 100000] [--sample 1000] [--gpus 1] [--json]`: the fleet at scale,
 * through the embedded runtime with every port metered (bench/cost/fleet.ts).
 *
 * Loads `--nodes` node records (META, liveness, metrics: what registration and a heartbeat of a
 * simulated H100 node store), then measures:
 * - heartbeats in a sampled window: `--sample` nodes picked at random each send one real heartbeat
 *   (HTTP, their own credential); every write is counted by partition key (table and GSI keys), and
 *   the window stands for the fleet's heartbeat rate (nodes / interval per second), so a key's
 *   writes per second = its writes in the window x rate / sample;
 * - units per heartbeat at the full fleet against the 10 registered nodes alone;
 * - the node sweep at the full fleet in its bounded invocations (records each read, duration on
 *   dynalite, units) and the placement of one submitted task (units: it reads candidates from the
 *   free-capacity index, not the fleet);
 * - a container start's planning and the scheduled placement run (units: pages of the indexes and
 *   the sweep's per-shard aggregate, not the fleet);
 * - the minute's reconcile (every image, fanned out per image) and the fleet gauges (from the
 *   sweep's aggregate): units, not the fleet;
 * - a /ws/metrics and /ws/doctor push with a subscriber on each: its first invocation and every
 *   link of the shards' chains (records, seconds, frames, the largest frame), every node named once;
 * - GET /metrics: the main target (fleet series) and each per-node page of shard 0 (seconds, bytes);
 * - a global service's reconcile: one link (a page of nodes, a copy placed on each), then again;
 * - heartbeat requests per second against API Gateway's default 10,000 requests/s.
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SWEEP_ITEMS_PER_INVOCATION, sweepShard } from '../functions/nodes/nodes.js';
import { SHARDS, liveKey } from '../functions/nodes/node-records.js';
import { loadNodeRecords } from './cost/load-nodes.js';
import { resetPlacementRunner } from '../functions/cluster/placement.js';
import { WebSocket } from 'ws';
import { MAX_FRAME_BYTES } from '../functions/realtime/messages.js';
import { PUSH_ITEMS_PER_INVOCATION, pushLive, pushShard, type PushLink } from '../functions/realtime/push.js';
import { renderMetrics } from '../functions/observability/prometheus.js';
import { GLOBAL_ITEMS_PER_INVOCATION } from '../functions/orchestrator/global.js';
import { getService } from '../functions/orchestrator/model.js';
import type { Store, StoreItem } from '../functions/ports/store.js';
import { call } from '../test/harness/scripted-agent.js';
import { EVENTS_QUEUE } from '../functions/core/events.js';
import { changeService, nextService } from '../functions/orchestrator/desired-state.js';
import { reconcile, reconcileFanOut, reconcileGlobalFrom } from '../functions/orchestrator/reconciler.js';
import { fleetGauges } from '../functions/observability/fleet-gauges.js';
import { collectNodeMetrics } from '../agent/node.js';
import { silentLogger } from '../agent/log.js';
import { fixtureCollectors } from './cost/sim-node.js';
import { awsCharged, operationUnits, startFleet, measureHeartbeat, type Fleet } from './cost/fleet.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100000' },
    sample: { type: 'string', default: '1000' },
    gpus: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
    /** A file each phase's start is appended to (the runtime swallows output while it runs). */
    progress: { type: 'string' },
  },
});
const N = Number(values.nodes);
const SAMPLE = Math.min(Number(values.sample), N);
const GPUS = Number(values.gpus);
const EVENTS_TIMEOUT_S = 60; // lib/stack.ts EVENTS_TIMEOUT
const API_DEFAULT_RPS = 10_000;
const KEY_LIMIT_WPS = 1_000;
const progress = (phase: string) => {
  if (values.progress) appendFileSync(values.progress, `${new Date().toISOString()} ${phase}\n`);
};

/** Counts writes per partition key: the table's and each GSI key the written item carries. */
class KeyCounter {
  counts = new Map<string, number>();
  on = false;
  wrap(store: Store): Store {
    const count = (item: Partial<StoreItem> | undefined, pk: string) => {
      if (!this.on) return;
      for (const k of [
        `table ${pk}`,
        ...(['gsi1pk', 'gsi2pk'] as const).map((g) => item?.[g] && `${g} ${String(item[g])}`),
      ])
        if (k) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    };
    return new Proxy(store, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'put')
          return async (item: StoreItem, c?: unknown) => {
            await (v as Store['put']).call(target, item, c as never);
            count(item, item.pk);
          };
        if (prop === 'update')
          return async (pk: string, sk: string, spec: unknown, c?: unknown) => {
            const out = await (v as Store['update']).call(target, pk, sk, spec as never, c as never);
            count(out, pk);
            return out;
          };
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
  }
}

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** A WebSocket subscriber that keeps the frames it gets. */
async function subscribe(fleet: Fleet, path: string) {
  const ws = new WebSocket(`${fleet.rt.url.replace(/^http/, 'ws')}${path}`);
  const frames: string[] = [];
  ws.on('message', (m) => frames.push(String(m)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, frames };
}

/**
 * A /ws/metrics and /ws/doctor push with a subscriber on each: the push's first invocation, then
 * every link of every shard's chain one at a time (as `ws.push.shard` runs them), each timed.
 */
async function measurePush(fleet: Fleet, settleAll: () => Promise<void>) {
  const ctx = fleet.rt.ctx;
  const metrics = await subscribe(fleet, '/ws/metrics');
  const doctor = await subscribe(fleet, '/ws/doctor');
  // Their first frames are a push of their own: let it finish.
  await settleAll();
  fleet.meter.reset();
  const [root, rootS] = await seconds(() => fleet.meter.within('push root', () => pushLive(ctx)));
  const rootUnits = operationUnits(fleet.meter.total((e) => e.label === 'push root'));
  await settleAll();
  metrics.frames.length = 0;
  doctor.frames.length = 0;
  const links: { read: number; seconds: number; frames: number }[] = [];
  const at = ctx.now();
  fleet.meter.reset();
  for (const shard of SHARDS) {
    let link: PushLink | undefined = {
      shard,
      link: 0,
      at,
      channels: ['metrics', 'doctor'],
      budget: PUSH_ITEMS_PER_INVOCATION,
    };
    while (link) {
      const current: PushLink = link;
      const [out, s] = await seconds(() => fleet.meter.within('push link', () => pushShard(ctx, current)));
      links.push({ read: out.read, seconds: s, frames: out.frames });
      link = out.next;
    }
  }
  const linkUnits = operationUnits(
    fleet.meter.total((e) => e.label === 'push link'),
    links.length,
  );
  const named = new Set<string>();
  let entries = 0;
  for (const f of metrics.frames) {
    const keys = Object.keys((JSON.parse(f) as { nodes: object }).nodes);
    entries += keys.length;
    for (const k of keys) named.add(k);
  }
  const bytes = [...metrics.frames, ...doctor.frames].map((f) => Buffer.byteLength(f));
  metrics.ws.close();
  doctor.ws.close();
  return {
    first_invocation: { seconds: rootS, records: root.read, fanned_out: root.fannedOut, units: rootUnits },
    links: links.length,
    largest_link_records: Math.max(...links.map((l) => l.read)),
    records_per_invocation_limit: PUSH_ITEMS_PER_INVOCATION,
    slowest_link_seconds: Math.max(...links.map((l) => l.seconds)),
    units_per_link: linkUnits,
    metrics_frames: metrics.frames.length,
    doctor_frames: doctor.frames.length,
    nodes_named: named.size,
    node_entries: entries,
    largest_frame_bytes: Math.max(...bytes),
  };
}

/** GET /metrics: the main target (fleet series) and every per-node page of shard 0, each timed and metered. */
async function measureScrape(fleet: Fleet) {
  const ctx = fleet.rt.ctx;
  fleet.meter.reset();
  const [main, mainS] = await seconds(() => fleet.meter.within('scrape', () => renderMetrics(ctx)));
  const mainUnits = operationUnits(fleet.meter.total((e) => e.label === 'scrape'));
  const pages = SHARDS.map((shard) =>
    Number(new RegExp(`fleet_node_series_pages\\{shard="${shard}"\\} (\\d+)`).exec(main.body)?.[1] ?? 0),
  );
  const timed: { seconds: number; bytes: number; nodes: number }[] = [];
  fleet.meter.reset();
  for (let page = 0; page < (pages[0] ?? 0); page++) {
    const [out, s] = await seconds(() =>
      fleet.meter.within('scrape page', () => renderMetrics(ctx, { shard: 0, page })),
    );
    timed.push({
      seconds: s,
      bytes: Buffer.byteLength(out.body),
      nodes: out.body.match(/^fleet_node_up\{/gm)?.length ?? 0,
    });
  }
  return {
    main: {
      seconds: mainS,
      bytes: Buffer.byteLength(main.body),
      units: mainUnits,
      paged: pages.some((p) => p > 0),
    },
    pages_per_shard: pages,
    shard0_pages: {
      count: timed.length,
      slowest_seconds: Math.max(0, ...timed.map((t) => t.seconds)),
      largest_bytes: Math.max(0, ...timed.map((t) => t.bytes)),
      largest_nodes: Math.max(0, ...timed.map((t) => t.nodes)),
      units_per_page: operationUnits(
        fleet.meter.total((e) => e.label === 'scrape page'),
        Math.max(1, timed.length),
      ),
    },
  };
}

/** A global service's reconcile: the first link of shard 0 (places a copy on each node of its page), timed, then the same link again. */
async function measureGlobal(fleet: Fleet) {
  const ctx = fleet.rt.ctx;
  const image = 'scale/exporter:1';
  await changeService(ctx, image, async (current) => ({
    next: { ...nextService(ctx, image, current, 1, {}), global: true },
    wanted: 0,
  }));
  const service = (await getService(ctx, image))!;
  const link = { shard: 0, link: 0, counted: 0, budget: GLOBAL_ITEMS_PER_INVOCATION };
  fleet.meter.reset();
  const [first, firstS] = await seconds(() =>
    fleet.meter.within('global link', () => reconcileGlobalFrom(ctx, service, link, false)),
  );
  const firstUnits = operationUnits(fleet.meter.total((e) => e.label === 'global link'));
  fleet.meter.reset();
  const [again, againS] = await seconds(() =>
    fleet.meter.within('global again', () => reconcileGlobalFrom(ctx, service, link, false)),
  );
  const againUnits = operationUnits(fleet.meter.total((e) => e.label === 'global again'));
  return {
    records_per_invocation_limit: GLOBAL_ITEMS_PER_INVOCATION,
    first_link: { seconds: firstS, records: first.read, placed: first.placed.length, units: firstUnits },
    steady_link: { seconds: againS, records: again.read, placed: again.placed.length, units: againUnits },
  };
}

const seconds = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const out = await fn();
  return [out, Math.round(performance.now() - t) / 1000];
};

async function main(): Promise<object> {
  const fleet: Fleet = await startFleet({
    nodes: 10,
    profile: 'idle',
    hardware: { kind: 'gpu', gpus: GPUS },
    // Loading thousands of nodes takes minutes: an hour's offline window keeps the loaded fleet
    // online through the bench, as a fleet beating at its rate is (beats stay every 30 s).
    // The local runtime's own push timer is left out: the bench drives the pushes it measures.
    env: {
      NODE_HEARTBEAT_SECONDS: '30',
      NODE_OFFLINE_AFTER_SECONDS: '3600',
      WS_PUSH_INTERVAL_SECONDS: '3600',
    },
  });
  try {
    const ctx = fleet.rt.ctx;
    // A sweep of a large fleet runs as a chain of events past the fleet's 30 s settle.
    const settleAll = async () => {
      for (let i = 0; i < 20; i++) await fleet.settle();
    };
    const interval = fleet.nodes[0]!.heartbeatIntervalSeconds;
    const small = operationUnits(await measureHeartbeat(fleet));

    const [{ ids, tokens }, loadS] = await seconds(() => loadNodeRecords(fleet, N));

    // Heartbeats in a sampled window.
    const counter = new KeyCounter();
    ctx.store = counter.wrap(ctx.store);
    const body = {
      metrics: await collectNodeMetrics(
        await fixtureCollectors({ kind: 'gpu', gpus: GPUS }),
        { jetson: false },
        silentLogger,
      ),
      containers: [],
      loadedModels: [],
    };
    progress('loaded; heartbeat window');
    const picked = [...ids].sort(() => Math.random() - 0.5).slice(0, SAMPLE);
    // A fleet beating at its rate: each sampled node online with a previous beat. That beat is put
    // in the window's minute (the window starts just past a minute boundary): a node's first beat
    // of a minute also writes its metric-history point, which the cost model counts once a minute
    // on its own (`metric_history_minute`), and the 10-node figure is a beat without it too.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 2_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
    for (const id of picked) {
      const k = liveKey(id);
      await ctx.store.update(k.pk, k.sk, { set: { lastHeartbeatMs: ctx.now(), status: 'online' } });
    }
    fleet.meter.reset();
    counter.on = true;
    const [, windowS] = await seconds(() =>
      pool(picked, 16, async (nodeId) => {
        const beat = () =>
          call(fleet.rt.url, 'POST', '/agent/heartbeat', body, {
            authorization: `Bearer ${tokens.get(nodeId)!}`,
          });
        // A reset connection (a loaded machine) is retried once, as the agent would at its next beat.
        const res = await beat().catch(beat);
        if (res.status !== 200)
          throw new Error(`heartbeat ${nodeId}: ${res.status} ${JSON.stringify(res.body)}`);
      }),
    );
    counter.on = false;
    await fleet.settle();
    const large = operationUnits(fleet.meter.total(awsCharged), SAMPLE);
    const beatsPerSecond = N / interval;
    const perKey = [...counter.counts]
      .map(([key, n]) => ({ key, writes_per_second: Math.round((n * beatsPerSecond) / SAMPLE) }))
      .sort((a, b) => b.writes_per_second - a.writes_per_second);

    progress('sweep');
    // The sweep at the full fleet, one bounded invocation at a time (as nodes.sweep.shard runs it).
    fleet.meter.reset();
    const invocations: { read: number; seconds: number }[] = [];
    let wentOffline = 0;
    const [, sweepS] = await seconds(() =>
      fleet.meter.within('sweep', async () => {
        for (const shard of SHARDS) {
          let cursor: string | undefined;
          do {
            const [part, s] = await seconds(() => sweepShard(ctx, shard, cursor));
            invocations.push({ read: part.read, seconds: s });
            wentOffline += part.wentOffline.length;
            cursor = part.cursor;
          } while (cursor);
        }
      }),
    );
    const sweepUnits = operationUnits(fleet.meter.total(awsCharged));
    // The steady state a submit meets: a sweep's aggregate and the per-minute fleet sample the
    // scheduled placement run writes (without a recent one a wait estimate reads the fleet).
    progress('warm-up sweep and placement run');
    await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
    await settleAll();
    await ctx.queue.send(
      EVENTS_QUEUE,
      JSON.stringify({ type: 'placement.run', reason: 'schedule', sample: true }),
    );
    await settleAll();
    progress('task placement');
    // One task placed on an event (what a submit triggers), against the full fleet's free-capacity index.
    resetPlacementRunner();
    fleet.meter.reset();
    const [submitted, placementS] = await seconds(async () => {
      const res = await call(fleet.rt.url, 'POST', '/tasks', {
        task_type: 'image_generation',
        model_name: 'SDXL_4GB_FP8.safetensors',
        parameters: { prompt: 'scale', width: 512, height: 512 },
        priority: 'normal',
      });
      await fleet.settle();
      return res;
    });
    if (submitted.status !== 200) throw new Error(`POST /tasks: ${submitted.status}`);
    const placementUnits = operationUnits(
      fleet.meter.total((e) => awsCharged(e) && e.label === 'event placement.run'),
    );
    const task = await call(fleet.rt.url, 'GET', `/tasks/${String(submitted.body.task_id)}`);
    // A container start's planning (preflight, reconcile of its image, dispatch): pages of the
    // eligible-node index, not the fleet.
    fleet.meter.reset();
    const image = 'scale/web:1';
    const [placed, startS] = await seconds(() =>
      fleet.meter.within('container start', async () => {
        await changeService(ctx, image, async (current) => ({
          next: nextService(ctx, image, current, 1, {}),
          wanted: 1,
        }));
        return (await reconcile(ctx, { imageId: image })).placed;
      }),
    );
    const startUnits = operationUnits(fleet.meter.total((e) => e.label === 'container start'));
    await fleet.settle();
    // The scheduled placement run (its fleet sample from the sweep's aggregate), after a sweep.
    await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
    await settleAll();
    resetPlacementRunner();
    fleet.meter.reset();
    const [, runS] = await seconds(async () => {
      await ctx.queue.send(
        EVENTS_QUEUE,
        JSON.stringify({ type: 'placement.run', reason: 'schedule', sample: true }),
      );
      await fleet.settle();
    });
    const runUnits = operationUnits(
      fleet.meter.total((e) => awsCharged(e) && e.label === 'event placement.run'),
    );
    // The minute's reconcile (the sweep's `reconcile` event: each image, its nodes and a page of
    // candidates) and the fleet gauges the sweep publishes (its aggregate and the queue).
    await fleet.settle();
    fleet.meter.reset();
    const [fan, minuteS] = await seconds(() =>
      fleet.meter.within('minute reconcile', () => reconcileFanOut(ctx)),
    );
    const minuteUnits = operationUnits(fleet.meter.total((e) => e.label === 'minute reconcile'));
    fleet.meter.reset();
    const [gauges, gaugesS] = await seconds(() => fleet.meter.within('fleet gauges', () => fleetGauges(ctx)));
    const gaugeUnits = operationUnits(fleet.meter.total((e) => e.label === 'fleet gauges'));
    progress('ws push');
    const push = await measurePush(fleet, settleAll);
    progress('metrics scrape');
    // A fresh sweep first, as every minute: its parts count the nodes and cut the pages.
    await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
    await settleAll();
    const scrape = await measureScrape(fleet);
    progress('global service reconcile');
    const global = await measureGlobal(fleet);

    const report = {
      nodes: N,
      gpus: GPUS,
      heartbeat_interval_seconds: interval,
      load_seconds: loadS,
      heartbeat_window: {
        sampled_beats: SAMPLE,
        seconds: windowS,
        fleet_beats_per_second: Math.round(beatsPerSecond),
        // A beat that crossed into a new minute also wrote the node's metric-history point.
        history_point_writes: [...counter.counts]
          .filter(([key]) => key.startsWith('table NODEMETRICS#'))
          .reduce((sum, [, n]) => sum + n, 0),
      },
      heartbeat_units: { at_10_nodes: small, at_full_fleet: large },
      hottest_partition_keys: perKey.slice(0, 5),
      partition_key_limit_met: (perKey[0]?.writes_per_second ?? 0) <= KEY_LIMIT_WPS,
      api_requests_per_second: { heartbeats: Math.round(beatsPerSecond), default_limit: API_DEFAULT_RPS },
      sweep: {
        seconds: sweepS,
        invocations: invocations.length,
        largest_invocation_records: Math.max(...invocations.map((i) => i.read)),
        records_per_invocation_limit: SWEEP_ITEMS_PER_INVOCATION,
        slowest_invocation_seconds: Math.max(...invocations.map((i) => i.seconds)),
        went_offline: wentOffline,
        units: sweepUnits,
        timeout_seconds: EVENTS_TIMEOUT_S,
      },
      task_placement: {
        seconds: placementS,
        task_status: task.body.status,
        units: placementUnits,
        timeout_seconds: EVENTS_TIMEOUT_S,
      },
      container_start: { seconds: startS, placed: placed.length, units: startUnits },
      scheduled_placement_run: { seconds: runS, units: runUnits, timeout_seconds: EVENTS_TIMEOUT_S },
      minute_reconcile: {
        seconds: minuteS,
        images_here: fan.here,
        images_emitted: fan.emitted,
        units: minuteUnits,
        timeout_seconds: EVENTS_TIMEOUT_S,
      },
      fleet_gauges: { seconds: gaugesS, values: gauges ?? null, units: gaugeUnits },
      ws_push: { ...push, limit_bytes: MAX_FRAME_BYTES, timeout_seconds: EVENTS_TIMEOUT_S },
      metrics_scrape: scrape,
      global_reconcile: { ...global, timeout_seconds: EVENTS_TIMEOUT_S },
      notes: [
        'durations on dynalite in one process on a shared 2-core machine: indicative only; units are exact',
        'per-key writes/s extrapolate the sampled window to the fleet rate (nodes / interval); a beat whose metrics did not move writes only its liveness record',
      ],
    };
    return report;
  } finally {
    await fleet.stop();
  }
}

// After the fleet stops: the runtime's log capture swallows output while it runs.
const report = await main();
console.log(JSON.stringify(report, null, values.json ? 2 : 1));
