/**
 * Issue 16: what a placement and a sweep invocation read does not grow with the fleet. Node records
 * are loaded straight into the store (bench/cost/load-nodes.ts) around a fleet of registered
 * simulated nodes; every port is metered. Counts, never timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { awsCharged, operationUnits, startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { loadNodeRecords } from '../../../bench/cost/load-nodes.js';
import { runPlacement } from '../../../functions/cluster/placement.js';
import { call } from '../../harness/scripted-agent.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { SHARDS, freeKey, liveKey, upKey } from '../../../functions/nodes/node-records.js';
import { emptyPart, fleetAggregate, storePart } from '../../../functions/nodes/fleet-aggregate.js';
import { sweepShard } from '../../../functions/nodes/nodes.js';
import { queryAll } from '../../../functions/ports/store.js';
import { fleetKeys } from '../../../functions/core/keys.js';
import { changeService, nextService } from '../../../functions/orchestrator/desired-state.js';
import { reconcile, reconcileFanOut } from '../../../functions/orchestrator/reconciler.js';
import { fleetGauges } from '../../../functions/observability/fleet-gauges.js';

describe('reads per operation independent of the fleet size', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  /** One task submitted and placed on the event its submit sends; the placement's units. */
  async function placementAt(extra: number) {
    fleet = await startFleet({ nodes: 2, profile: 'busy', hardware: { kind: 'gpu', gpus: 1 } });
    await loadNodeRecords(fleet, extra, 'reads');
    await fleet.settle();
    fleet.meter.reset();
    const res = await call(fleet.rt.url, 'POST', '/tasks', {
      task_type: 'image_generation',
      model_name: 'SDXL_4GB_FP8.safetensors',
      parameters: { prompt: 'reads', width: 512, height: 512 },
      priority: 'normal',
    });
    expect(res.status).toBe(200);
    await fleet.settle();
    const units = operationUnits(
      fleet.meter.total((e) => awsCharged(e) && e.label === 'event placement.run'),
    );
    const task = await call(fleet.rt.url, 'GET', `/tasks/${String(res.body.task_id)}`);
    await fleet.stop();
    fleet = undefined;
    return { units, status: task.body.status as string };
  }

  it('a task placement reads the same at 100 and at 800 nodes (candidates from the free-capacity index)', async () => {
    const small = await placementAt(98);
    const large = await placementAt(798);
    expect(small.status).toBe('assigned');
    expect(large.status).toBe('assigned');
    expect(large.units.dynamo_calls).toBe(small.units.dynamo_calls);
    expect(large.units.read_units).toBe(small.units.read_units);
    // The queue, the held slots, the catalogue, the index (by model, then a page of a shard), and
    // the two candidates it read: far from the 800 nodes' records.
    expect(large.units.read_units).toBeLessThanOrEqual(10);
  }, 180_000);

  /**
   * A container start's planning (the preflight, the reconcile of its image and the dispatch, without
   * the request's wait on the agent, whose polls follow the clock) and then the scheduled placement
   * run after a sweep, at a fleet of `extra` loaded nodes plus two registered ones.
   */
  async function startAndScheduledRunAt(extra: number) {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    await loadNodeRecords(fleet, extra, 'start');
    await fleet.settle();
    const image = 'reads/web:1';
    fleet.meter.reset();
    const placed = await fleet.meter.within('container start', async () => {
      await changeService(ctx, image, async (current) => ({
        next: nextService(ctx, image, current, 1, {}),
        wanted: 1,
      }));
      return (await reconcile(ctx, { imageId: image })).placed;
    });
    const start = operationUnits(fleet.meter.total((e) => e.label === 'container start'));
    await fleet.settle();
    // A sweep first (the every-minute schedule): the placement run's fleet sample sums its parts.
    await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
    await fleet.settle();
    fleet.meter.reset();
    // The minute schedule's placement part (functions/minute.ts): a run that records the fleet sample.
    await fleet.meter.within('scheduled placement', () => runPlacement(ctx, { sample: true }));
    await fleet.settle();
    const run = operationUnits(fleet.meter.total((e) => awsCharged(e) && e.label === 'scheduled placement'));
    const [sample] = (
      await ctx.store.query<{ pk: string; sk: string; onlineNodes: number }>('CLUSTERSAMPLES', {
        ascending: false,
        limit: 1,
      })
    ).items;
    // The minute's reconcile (what the sweep's `reconcile` event runs) and the fleet gauges.
    await fleet.settle();
    fleet.meter.reset();
    const fan = await fleet.meter.within('minute reconcile', () => reconcileFanOut(ctx));
    const minute = operationUnits(fleet.meter.total((e) => e.label === 'minute reconcile'));
    fleet.meter.reset();
    const gauges = await fleet.meter.within('gauges', () => fleetGauges(ctx));
    const gaugeUnits = operationUnits(fleet.meter.total((e) => e.label === 'gauges'));
    await fleet.stop();
    fleet = undefined;
    return {
      placed: placed.length,
      start,
      run,
      onlineNodes: sample?.onlineNodes,
      fan,
      minute,
      gauges,
      gaugeUnits,
    };
  }

  it('a container start and the scheduled placement run read the same at 200 and at 800 nodes', async () => {
    const small = await startAndScheduledRunAt(198);
    const large = await startAndScheduledRunAt(798);
    expect(small.placed).toBe(1);
    expect(large.placed).toBe(1);
    // The image's nodes (none yet) and one page of the eligible-node index (16 nodes), each candidate
    // with its copies, read by the preflight and again by the reconcile: 70 read units at both sizes.
    // The index is read from a random shard on: a first page that holds the image's own node (known
    // already) takes one more query to fill, at either size.
    const flat = (a: { dynamo_calls: number; read_units: number }, b: typeof a) => {
      expect(Math.abs(a.dynamo_calls - b.dynamo_calls)).toBeLessThanOrEqual(1);
      expect(Math.abs(a.read_units - b.read_units)).toBeLessThanOrEqual(0.5);
    };
    flat(large.start, small.start);
    expect(large.start.read_units).toBeLessThanOrEqual(80);
    // The queue, the held slots, the catalogue and the sweep's per-shard parts: not the nodes.
    expect(large.run.dynamo_calls).toBe(small.run.dynamo_calls);
    expect(large.run.read_units).toBe(small.run.read_units);
    expect(large.run.read_units).toBeLessThanOrEqual(10);
    // The sample still counts every node, from the parts.
    expect(small.onlineNodes).toBe(200);
    expect(large.onlineNodes).toBe(800);
    // The minute's reconcile of the one image: its node and a page of candidates, not the fleet.
    expect(large.fan).toEqual({ here: 1, emitted: 0 });
    flat(large.minute, small.minute);
    expect(large.minute.write_units).toBe(0);
    // The gauges count every node from the sweep's aggregate (one query) and the queue from its
    // counters (one record of each of the 8 shards, task-counts.ts): nine calls, whatever the queue.
    expect(small.gauges).toMatchObject({ online: 200, offline: 0, queueDepth: 0 });
    expect(large.gauges).toMatchObject({ online: 800, offline: 0, queueDepth: 0 });
    expect(large.gaugeUnits.dynamo_calls).toBe(9);
    expect(large.gaugeUnits.read_units).toBe(small.gaugeUnits.read_units);
  }, 240_000);

  it('a sweep invocation reads at most its budget; the chain of one shard covers it and flips silent nodes offline', async () => {
    fleet = await startFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    const { ids } = await loadNodeRecords(fleet, 400, 'sweep');
    // Every tenth node went silent ten minutes ago.
    const silent = ids.filter((_, i) => i % 10 === 0);
    for (const id of silent) {
      const k = liveKey(id);
      await ctx.store.update(k.pk, k.sk, { set: { lastHeartbeatMs: ctx.now() - 600_000 } });
    }
    const budget = 40;
    const wentOffline: string[] = [];
    let records = 0;
    let invocations = 0;
    for (const shard of SHARDS) {
      const inShard = (await queryAll(ctx.store, fleetKeys.nodeStatePk(shard))).length;
      let cursor: string | undefined;
      let chain = 0;
      do {
        const part = await sweepShard(ctx, shard, cursor, budget);
        expect(part.read).toBeLessThanOrEqual(budget);
        records += part.read;
        wentOffline.push(...part.wentOffline);
        cursor = part.cursor;
        chain++;
      } while (cursor);
      // A page that ends exactly at the budget may leave one empty link.
      expect(chain).toBeLessThanOrEqual(Math.ceil(inShard / budget) + 1);
      invocations += chain;
    }
    // Liveness and metrics of 401 nodes, each read once.
    expect(records).toBe(2 * 401);
    expect(invocations).toBeGreaterThanOrEqual(Math.ceil(802 / budget));
    expect(wentOffline.sort()).toEqual([...silent].sort());
    // A node gone offline leaves the free-capacity index.
    for (const id of silent) {
      const k = freeKey(id);
      expect(await ctx.store.get(k.pk, k.sk)).toBeUndefined();
    }
  }, 180_000);

  it('a repairing sweep puts back lost index entries and drops those of silent nodes', async () => {
    fleet = await startFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    const { ids } = await loadNodeRecords(fleet, 60, 'repair');
    const lost = ids.filter((_, i) => i % 5 === 0);
    const silent = ids.filter((_, i) => i % 5 === 1);
    for (const id of lost) for (const k of [upKey(id), freeKey(id)]) await ctx.store.delete(k.pk, k.sk);
    for (const id of silent) {
      const k = liveKey(id);
      await ctx.store.update(k.pk, k.sk, { set: { lastHeartbeatMs: ctx.now() - 600_000 } });
    }
    let repaired = 0;
    for (const shard of SHARDS)
      repaired += (await sweepShard(ctx, shard, undefined, undefined, true)).repaired;
    // Each lost node gets both entries back; each silent one loses its entry in each index.
    expect(repaired).toBe(2 * lost.length + 2 * silent.length);
    for (const id of lost)
      for (const k of [upKey(id), freeKey(id)]) expect(await ctx.store.get(k.pk, k.sk)).toBeDefined();
    for (const id of silent)
      for (const k of [upKey(id), freeKey(id)]) expect(await ctx.store.get(k.pk, k.sk)).toBeUndefined();
    // A sweep that does not repair reads no index and no problem marker: the shard's page alone.
    fleet.meter.reset();
    await fleet.meter.within('plain sweep', () => sweepShard(ctx, 0));
    const calls = operationUnits(fleet.meter.total((e) => e.label === 'plain sweep')).dynamo_calls;
    expect(calls).toBe(1);
  }, 120_000);

  it('the scheduled sweep runs in one invocation while the fleet fits its budget, and fans out past it', async () => {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    const { ids } = await loadNodeRecords(fleet, 100, 'fan');
    const invocations = async (payload: object) => {
      fleet!.meter.reset();
      await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep', ...payload }));
      await fleet!.settle();
      const count = (label: string) => fleet!.meter.total((e) => e.label === label).lambdaInvocations;
      return { root: count('event nodes.sweep'), shards: count('event nodes.sweep.shard') };
    };
    // 102 nodes, 204 records: one invocation.
    expect(await invocations({})).toEqual({ root: 1, shards: 0 });

    const silent = ids.filter((_, i) => i % 7 === 0);
    for (const id of silent) {
      const k = liveKey(id);
      await ctx.store.update(k.pk, k.sk, { set: { lastHeartbeatMs: ctx.now() - 600_000 } });
    }
    // 40 records an invocation: the rest of the fleet goes on in shard invocations, and every
    // silent node is found whichever invocation reads it.
    const fanned = await invocations({ budget: 40 });
    expect(fanned.root).toBe(1);
    expect(fanned.shards).toBeGreaterThanOrEqual(Math.ceil(204 / 40) - 1);
    for (const id of silent) {
      const k = liveKey(id);
      expect((await ctx.store.get<{ status: string } & { pk: string; sk: string }>(k.pk, k.sk))?.status).toBe(
        'offline',
      );
    }
    // The gauges sum the fanned-out chain's parts: every node counted once, the silent ones offline.
    expect(await fleetGauges(ctx)).toMatchObject({ online: 102 - silent.length, offline: silent.length });
  }, 120_000);

  it("a shard's aggregate while its sweep is part way: the new links and the rest of the last finished chain", async () => {
    fleet = await startFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    const part = (n: number) => ({ ...emptyPart(), onlineNodes: n, nodes: n });
    // An older, longer chain's last link (the shard shrank since): stale.
    await storePart(ctx, 0, 3, 100, part(1_000), true);
    // The last finished chain: three links.
    for (const link of [0, 1, 2]) await storePart(ctx, 0, link, 200, part(10 ** link), link === 2);
    expect((await fleetAggregate(ctx, 60_000))?.onlineNodes).toBe(111);
    // The next sweep has written its first link only (20 online there now).
    await storePart(ctx, 0, 0, 300, part(20), false);
    expect(await fleetAggregate(ctx, 60_000)).toMatchObject({ onlineNodes: 130, nodes: 130 });
  }, 60_000);
});
