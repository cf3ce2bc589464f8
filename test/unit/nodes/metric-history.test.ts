import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { metricHistoryKeys } from '../../../functions/core/keys.js';
import { readMetricHistory, recordMetricHistory } from '../../../functions/nodes/metric-history.js';
import type { NodeItem } from '../../../functions/nodes/nodes.js';
import type { NodeMetrics } from '../../../protocol/messages.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const MIN = 60_000;

const metrics = (cpu: number): NodeMetrics => ({
  cpuPercent: cpu,
  memoryUsedMb: 4096,
  memoryTotalMb: 8192,
  diskUsedGb: 25,
  diskTotalGb: 100,
  gpus: [
    {
      index: 0,
      name: 'NVIDIA A10',
      uuid: 'GPU-1',
      memoryTotalMiB: 24000,
      memoryUsedMiB: 6000,
      utilizationGpu: cpu / 2,
      temperatureC: 60,
    } as NodeMetrics['gpus'][number],
  ],
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
  /** Heartbeats every 20 s from `from` for `minutes`, cpu = the minute index. */
  const beat = async (from: number, minutes: number) => {
    let prev: number | undefined = node.lastHeartbeatMs;
    for (let t = from; t < from + minutes * MIN; t += 20_000) {
      now = t;
      await recordMetricHistory(
        ctx,
        { ...node, lastHeartbeatMs: prev, metrics: prev === undefined ? undefined : metrics(0) } as NodeItem,
        metrics((t - T0) / MIN),
      );
      prev = t;
    }
    node.lastHeartbeatMs = prev;
  };

  beforeAll(async () => {
    const embedded = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), { now: () => now });
    ctx = embedded.ctx;
    stop = embedded.stop;
  });
  afterAll(async () => stop?.());

  it('keeps one point a minute in one item an hour, and 5-minute averages of closed buckets', async () => {
    await beat(T0, 70); // 10:00 .. 11:09:40, three heartbeats a minute

    const fine = await readMetricHistory(ctx, node.nodeId, T0, T0 + 70 * MIN, 60);
    expect(fine).toHaveLength(70);
    expect(fine[0]).toEqual({
      t: T0,
      cpu: 0,
      memory: 50,
      gpu: 0,
      gpu_memory: 25,
      gpu_memory_mib: 6000,
      temperature: 60,
      disk: 25,
    });
    // The first heartbeat of each minute wins: cpu is the minute index.
    expect(fine.map((p) => p.cpu)).toEqual(Array.from({ length: 70 }, (_, i) => i));
    // Two hour items hold them.
    const items = await ctx.store.query(metricHistoryKeys.fine(node.nodeId, T0).pk, { prefix: 'M1#' });
    expect(items.items.map((i) => i.sk)).toEqual(['M1#2026-01-01T10', 'M1#2026-01-01T11']);

    const coarse = await readMetricHistory(ctx, node.nodeId, T0, T0 + 70 * MIN, 300);
    // Buckets 10:00 .. 11:00 are closed (11:05 is open): 13 averages of minutes 5k..5k+4.
    expect(coarse.map((p) => p.t)).toEqual(Array.from({ length: 13 }, (_, i) => T0 + i * 5 * MIN));
    expect(coarse.map((p) => p.cpu)).toEqual(Array.from({ length: 13 }, (_, i) => i * 5 + 2));
  });

  it('reads only the asked range, and nothing for a node without history', async () => {
    const some = await readMetricHistory(ctx, node.nodeId, T0 + 30 * MIN, T0 + 40 * MIN, 60);
    expect(some.map((p) => p.cpu)).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
    expect(await readMetricHistory(ctx, 'n-none', T0, T0 + 70 * MIN, 60)).toEqual([]);
  });

  it("keeps a node's first metrics even in its registration minute", async () => {
    now = T0 + 300 * MIN + 5_000;
    const fresh = {
      ...node,
      nodeId: 'n-new',
      lastHeartbeatMs: T0 + 300 * MIN,
      metrics: undefined,
    } as unknown as NodeItem;
    await recordMetricHistory(ctx, fresh, metrics(7));
    const pts = await readMetricHistory(ctx, 'n-new', T0 + 300 * MIN, T0 + 301 * MIN, 60);
    expect(pts.map((p) => p.cpu)).toEqual([7]);
  });

  it('writes nothing for a second heartbeat in the same minute, and no average across a gap', async () => {
    const before = await readMetricHistory(ctx, node.nodeId, T0, T0 + 200 * MIN, 60);
    // The node was away 50 minutes: its first minute back is recorded, the stale bucket is not averaged.
    await beat(T0 + 120 * MIN, 1);
    const after = await readMetricHistory(ctx, node.nodeId, T0, T0 + 200 * MIN, 60);
    expect(after).toHaveLength(before.length + 1);
    const coarse = await readMetricHistory(ctx, node.nodeId, T0, T0 + 200 * MIN, 300);
    expect(coarse).toHaveLength(13);
  });
});
