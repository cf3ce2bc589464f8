import { describe, expect, it } from 'vitest';
import {
  NODE_SHARDS,
  liveFacts,
  metricsDue,
  nodeShard,
  sampleChange,
  type LiveRecord,
  type MetricsRecord,
  type MetricsSample,
} from '../../../functions/nodes/node-records.js';
import { addToPart, countInPart, emptyPart, sumParts } from '../../../functions/nodes/fleet-aggregate.js';
import type { AppContext } from '../../../functions/core/context.js';

const gpu = (util: number, memUsed: number) => ({
  index: 0,
  uuid: 'GPU-1',
  name: 'NVIDIA H100',
  utilizationGpu: util,
  utilizationMemory: 0,
  memoryTotalMiB: 81_559,
  memoryUsedMiB: memUsed,
  memoryFreeMiB: 81_559 - memUsed,
  temperatureC: 35,
  powerDrawW: 70,
  powerLimitW: 700,
});

const sample = (util: number, memUsed = 0, extra: Partial<MetricsSample> = {}): MetricsSample => ({
  metrics: {
    cpuPercent: 2,
    memoryUsedMb: 10_000,
    memoryTotalMb: 200_000,
    diskUsedGb: 100,
    diskTotalGb: 1_000,
    gpus: [gpu(util, memUsed)],
  },
  loadedModels: [],
  containerStats: {},
  ...extra,
});

const ctx = {
  config: { NODE_METRICS_INTERVAL_SECONDS: 60, NODE_METRICS_THRESHOLD_PERCENT: 10 },
} as AppContext;
const stored = (s: MetricsSample, at: number): MetricsRecord => ({
  pk: 'p',
  sk: 's',
  nodeId: 'n',
  storedAtMs: at,
  ...s,
});

describe('node records', () => {
  it('measures the largest change in percent of the larger value, at least of 100', () => {
    expect(sampleChange(sample(0), sample(0))).toBe(0);
    expect(sampleChange(sample(0), sample(5))).toBe(5);
    // 4,000 MiB more used: free falls 41,559 -> 37,559, 9.6 % of the larger value.
    expect(sampleChange(sample(0, 40_000), sample(0, 44_000))).toBeCloseTo(9.62, 1);
  });

  it('counts a change of models, containers or GPUs as a change of shape', () => {
    expect(sampleChange(sample(0), sample(0, 0, { loadedModels: ['sdxl'] }))).toBe(Infinity);
    const container = {
      state: 'running',
      kind: 'service',
      cpuPercent: 1,
      memoryPercent: 1,
      memoryUsageMb: 10,
    };
    expect(sampleChange(sample(0), sample(0, 0, { containerStats: { i1: container } }))).toBe(Infinity);
    expect(
      sampleChange(
        sample(0, 0, { containerStats: { i1: container } }),
        sample(0, 0, { containerStats: { i1: { ...container, state: 'exited' } } }),
      ),
    ).toBe(Infinity);
  });

  it('stores at once past the threshold, after the interval past noise, never the same sample again', () => {
    const before = stored(sample(0), 0);
    expect(metricsDue(ctx, undefined, sample(0), 0)).toBe(true);
    expect(metricsDue(ctx, before, sample(0), 10 * 60_000)).toBe(false);
    expect(metricsDue(ctx, before, sample(50), 1_000)).toBe(true);
    expect(metricsDue(ctx, before, sample(5), 30_000)).toBe(false);
    expect(metricsDue(ctx, before, sample(5), 60_000)).toBe(true);
    // Below the 1 % noise floor: never.
    expect(metricsDue(ctx, before, sample(0.5), 10 * 60_000)).toBe(false);
  });

  it('spreads node ids over every shard, the same shard every time', () => {
    const counts = new Array<number>(NODE_SHARDS).fill(0);
    for (let i = 0; i < 8_000; i++) counts[nodeShard(`node-${i}-${(i * 2654435761) % 65_536}`)]!++;
    expect(counts.every((c) => c > 800 && c < 1_200)).toBe(true);
    expect(nodeShard('gpu-a-1f2e3d4c')).toBe(nodeShard('gpu-a-1f2e3d4c'));
  });

  it('sums every node read and the online ones across parts; a part from before the count counts its online nodes', () => {
    const a = { ...emptyPart(), onlineNodes: 3, nodes: 5 };
    const b = { ...emptyPart(), onlineNodes: 2, nodes: 2 };
    const older = { ...emptyPart(), onlineNodes: 4 };
    delete older.nodes;
    expect(sumParts([a, b, older])).toMatchObject({ onlineNodes: 9, nodes: 11 });
  });

  it('counts nodes by cluster and keeps the earliest registration, from what the liveness record carries', () => {
    const live = (nodeId: string, node: Parameters<typeof liveFacts>[0]): LiveRecord => ({
      pk: 'p',
      sk: `${nodeId}#LIVE`,
      nodeId,
      status: 'offline',
      lastHeartbeat: '',
      lastHeartbeatMs: 0,
      ...liveFacts(node),
    });
    const a = emptyPart();
    countInPart(a, live('a', { memoryMb: 1, cluster: 'lab', registeredAt: '2026-01-02T00:00:00Z' }));
    countInPart(a, live('b', { memoryMb: 1, cluster: 'lab' }));
    const b = emptyPart();
    countInPart(b, live('c', { memoryMb: 1, cluster: 'edge', registeredAt: '2026-01-01T00:00:00Z' }));
    // A record from before these facts: counted, no cluster, no registration.
    countInPart(b, live('d', { memoryMb: 1 }));
    expect(sumParts([a, b])).toMatchObject({
      nodes: 4,
      clusters: { lab: 2, edge: 1 },
      since: Date.parse('2026-01-01T00:00:00Z'),
    });
    expect(sumParts([emptyPart()]).since).toBeUndefined();
  });

  it("sums the online nodes' hosts: the sample's figures, else what registration declared; none with an older record", () => {
    const live = (nodeId: string, facts: Partial<LiveRecord>): LiveRecord => ({
      pk: 'p',
      sk: `${nodeId}#LIVE`,
      nodeId,
      status: 'online',
      lastHeartbeat: '',
      lastHeartbeatMs: 0,
      ...facts,
    });
    const sampled: MetricsRecord = {
      pk: 'p',
      sk: 'a#METRICS',
      nodeId: 'a',
      storedAtMs: 0,
      loadedModels: [],
      metrics: {
        cpuPercent: 50,
        memoryUsedMb: 1024,
        memoryTotalMb: 4096,
        diskUsedGb: 10,
        diskTotalGb: 100,
        gpus: [],
      },
      containerStats: {
        c1: { state: 'running', kind: 'service', cpuPercent: 20, memoryPercent: 1, memoryUsageMb: 300 },
        c2: { state: 'exited', kind: 'run', cpuPercent: null, memoryPercent: null, memoryUsageMb: null },
      },
    };
    const part = emptyPart();
    addToPart(part, live('a', { cores: 4, memoryMb: 8192, diskGb: 500 }), sampled);
    addToPart(part, live('b', { cores: 2, memoryMb: 2048, diskGb: 50 }), undefined);
    expect(part.host).toEqual({
      cores: 6,
      cpuWeighted: 200,
      memTotalMb: 4096 + 2048,
      memUsedMb: 1024,
      diskTotalGb: 150,
      diskUsedGb: 10,
      containersRunning: 1,
      containerCpu: 20,
      containerMemMb: 300,
      samples: 3,
    });
    expect(sumParts([part, part]).host?.cores).toBe(12);
    const older = emptyPart();
    addToPart(older, live('c', {}), undefined);
    expect(older.host).toBeUndefined();
    expect(sumParts([part, older]).host).toBeUndefined();
  });
});
