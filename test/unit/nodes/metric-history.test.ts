import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { itemSize } from '../../../functions/core/item-size.js';
import { metricHistoryKeys } from '../../../functions/core/keys.js';
import { advanceHistory, readMetricHistory } from '../../../functions/nodes/metric-history.js';
import {
  MAX_LIVE_CLUSTER,
  liveFacts,
  liveKey,
  type HistoryBuffer,
  type LiveRecord,
} from '../../../functions/nodes/node-records.js';
import type { NodeItem } from '../../../functions/nodes/nodes.js';
import type { NodeMetrics } from '../../../protocol/messages.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const MIN = 60_000;

const gpu = (index: number, util: number) =>
  ({
    index,
    name: 'NVIDIA H100 80GB HBM3',
    uuid: `GPU-${index}`,
    memoryTotalMiB: 81559,
    memoryUsedMiB: 6000,
    utilizationGpu: util,
    temperatureC: 60,
  }) as NodeMetrics['gpus'][number];

const metrics = (cpu: number, gpus = 1): NodeMetrics => ({
  cpuPercent: cpu,
  memoryUsedMb: 4096,
  memoryTotalMb: 8192,
  diskUsedGb: 25,
  diskTotalGb: 100,
  gpus: Array.from({ length: gpus }, (_, i) => gpu(i, cpu / 2)),
});

describe('metric history (dynalite table)', () => {
  let ctx: AppContext;
  let stop: () => Promise<void>;
  let now = T0;
  const node = {
    nodeId: 'n-hist',
    nodeName: 'hist',
    addresses: [],
    memoryMb: 8192,
    diskGb: 100,
  } as unknown as NodeItem;

  /** What a heartbeat does with history: advances the buffer and writes the liveness record with it. */
  const heartbeat = async (n: NodeItem, m: NodeMetrics) => {
    const k = liveKey(n.nodeId);
    const live = await ctx.store.get<LiveRecord>(k.pk, k.sk);
    const history = await advanceHistory(ctx, n, live?.history, m);
    await ctx.store.put<LiveRecord>({
      ...k,
      nodeId: n.nodeId,
      status: 'online',
      lastHeartbeat: new Date(now).toISOString(),
      lastHeartbeatMs: now,
      ...(history ? { history } : {}),
    });
    return history;
  };
  /** Heartbeats every 20 s from `from` for `minutes`, cpu = the minute index. */
  const beat = async (from: number, minutes: number) => {
    for (let t = from; t < from + minutes * MIN; t += 20_000) {
      now = t;
      await heartbeat(node, metrics((t - T0) / MIN));
    }
  };
  const historyItems = async (prefix: string) =>
    (await ctx.store.query(metricHistoryKeys.points(node.nodeId, T0).pk, { prefix })).items;

  beforeAll(async () => {
    const embedded = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), { now: () => now });
    ctx = embedded.ctx;
    stop = embedded.stop;
  });
  afterAll(async () => stop?.());

  it('keeps one point a minute, written out 10 minutes at a time with their 5-minute averages', async () => {
    await beat(T0, 70); // 10:00 .. 11:09:40, three heartbeats a minute

    const fine = await readMetricHistory(ctx, node.nodeId, T0, T0 + 70 * MIN, 60);
    expect(fine).toHaveLength(70);
    expect(fine[0]).toEqual({
      t: T0,
      cpu: 0,
      memory: 50,
      gpu: 0,
      gpu_memory: 7.4,
      gpu_memory_mib: 6000,
      temperature: 60,
      disk: 25,
    });
    // The first heartbeat of each minute wins: cpu is the minute index.
    expect(fine.map((p) => p.cpu)).toEqual(Array.from({ length: 70 }, (_, i) => i));
    // The 6 closed 10-minute windows (10:00 .. 10:50) are items of 10 points; 11:00's 10 points are
    // still on the liveness record, and the read above served them from there.
    const windows = await historyItems('F#');
    expect(windows).toHaveLength(6);
    expect(windows.every((w) => (w.p as unknown[]).length === 10)).toBe(true);
    const live = await ctx.store.get<LiveRecord>(liveKey(node.nodeId).pk, liveKey(node.nodeId).sk);
    expect(live?.history).toEqual({ b: T0 + 60 * MIN, p: expect.any(Array) });
    expect(live!.history!.p.map((p) => p[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The averages: one item an hour (11:00's are still on the liveness record).
    expect((await historyItems('A#')).map((i) => i.sk)).toEqual(['A#2026-01-01T10']);

    const coarse = await readMetricHistory(ctx, node.nodeId, T0, T0 + 70 * MIN, 300);
    // Buckets 10:00 .. 11:00 are closed (11:05 is open): 13 averages of minutes 5k..5k+4, the last
    // from the liveness record.
    expect(coarse.map((p) => p.t)).toEqual(Array.from({ length: 13 }, (_, i) => T0 + i * 5 * MIN));
    expect(coarse.map((p) => p.cpu)).toEqual(Array.from({ length: 13 }, (_, i) => i * 5 + 2));
  });

  it('reads only the asked range, and nothing for a node without history', async () => {
    const some = await readMetricHistory(ctx, node.nodeId, T0 + 30 * MIN, T0 + 40 * MIN, 60);
    expect(some.map((p) => p.cpu)).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
    // Across the written and the carried points.
    const edge = await readMetricHistory(ctx, node.nodeId, T0 + 63 * MIN, T0 + 67 * MIN, 60);
    expect(edge.map((p) => p.cpu)).toEqual([63, 64, 65, 66]);
    expect(await readMetricHistory(ctx, 'n-none', T0, T0 + 70 * MIN, 60)).toEqual([]);
  });

  it("keeps a node's first metrics whatever the minute", async () => {
    now = T0 + 300 * MIN + 5_000;
    const fresh = { ...node, nodeId: 'n-new' } as unknown as NodeItem;
    await heartbeat(fresh, metrics(7));
    const pts = await readMetricHistory(ctx, 'n-new', T0 + 300 * MIN, T0 + 301 * MIN, 60);
    expect(pts.map((p) => p.cpu)).toEqual([7]);
  });

  it('takes one point a minute, and writes out the bucket a node left when it comes back', async () => {
    const before = await readMetricHistory(ctx, node.nodeId, T0, T0 + 200 * MIN, 60);
    // The node was away 50 minutes: its first minute back is one point (three beats), and the
    // window it left (11:00, on its liveness record) is written out with both averages.
    await beat(T0 + 120 * MIN, 1);
    const after = await readMetricHistory(ctx, node.nodeId, T0, T0 + 200 * MIN, 60);
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)).toMatchObject({ t: T0 + 120 * MIN, cpu: 120 });
    expect(await historyItems('F#')).toHaveLength(7);
    const coarse = await readMetricHistory(ctx, node.nodeId, T0, T0 + 200 * MIN, 300);
    expect(coarse.map((p) => p.cpu)).toEqual(Array.from({ length: 14 }, (_, i) => i * 5 + 2));
  });

  it('shows the average of a bucket a silent node left once it has closed', async () => {
    const quiet = { ...node, nodeId: 'n-quiet' } as unknown as NodeItem;
    for (let m = 0; m < 3; m++) {
      now = T0 + 600 * MIN + m * MIN;
      await heartbeat(quiet, metrics(10 + m));
    }
    const range = [T0 + 600 * MIN, T0 + 700 * MIN] as const;
    expect(await readMetricHistory(ctx, 'n-quiet', ...range, 300)).toEqual([]);
    now = T0 + 640 * MIN;
    const coarse = await readMetricHistory(ctx, 'n-quiet', ...range, 300);
    expect(coarse).toMatchObject([{ t: T0 + 600 * MIN, cpu: 11 }]);
  });

  it('still reads the layout before (an hour of points an item, six hours of averages) until it expires', async () => {
    const h = T0 + 50 * 60 * MIN; // 12:00 UTC, the start of a six-hour span
    await ctx.store.put({ ...metricHistoryKeys.fine('n-old', h), start: h, p3: [1, 2, 3, 4, 5, 6, 7] });
    await ctx.store.put({ ...metricHistoryKeys.coarse('n-old', h), start: h, p1: [9, 2, 3, 4, 5, 6, 7] });
    const fine = await readMetricHistory(ctx, 'n-old', h, h + 60 * MIN, 60);
    expect(fine).toEqual([
      {
        t: h + 3 * MIN,
        cpu: 1,
        memory: 2,
        gpu: 3,
        gpu_memory: 4,
        gpu_memory_mib: 5,
        temperature: 6,
        disk: 7,
      },
    ]);
    const coarse = await readMetricHistory(ctx, 'n-old', h, h + 60 * MIN, 300);
    expect(coarse.map((p) => [p.t, p.cpu])).toEqual([[h + 5 * MIN, 9]]);
  });

  it('leaves the buffer as it is for a beat timed before it (clocks apart)', async () => {
    const buffer: HistoryBuffer = { b: T0 + 900 * MIN, p: [[0, 1, 2, 3, 4, 5, 6, 7]] };
    now = T0 + 890 * MIN;
    expect(await advanceHistory(ctx, node, buffer, metrics(1))).toBe(buffer);
  });

  it('keeps the liveness record under one write unit with a full window of an 8-GPU node', async () => {
    const big = { ...node, nodeId: 'n-node-with-a-long-name-0123456789-abcdef01' } as unknown as NodeItem;
    let history: HistoryBuffer | undefined;
    for (let m = 0; m < 10; m++) {
      now = T0 + 1000 * MIN + m * MIN;
      history = await heartbeat(big, { ...metrics(99.9, 8), memoryUsedMb: 8191.7, diskUsedGb: 99.97 });
    }
    expect(history!.p).toHaveLength(10);
    const k = liveKey(big.nodeId);
    const live = await ctx.store.get<LiveRecord>(k.pk, k.sk);
    // With the largest facts it carries for the fleet aggregate (cluster, registration, host).
    const facts = liveFacts({
      memoryMb: 4_194_304,
      cpuCount: 1024,
      diskGb: 1_000_000,
      cluster: 'c'.repeat(MAX_LIVE_CLUSTER),
      registeredAt: new Date(T0).toISOString(),
    });
    expect(facts.cluster).toHaveLength(MAX_LIVE_CLUSTER);
    const record = { ...live!, ...facts, slots: 64, unifiedMb: 65536, version: 12345 };
    expect(itemSize(record)).toBeLessThanOrEqual(1024);
    expect(liveFacts({ memoryMb: 1, cluster: 'c'.repeat(MAX_LIVE_CLUSTER + 1) }).cluster).toBeUndefined();
  });
});
