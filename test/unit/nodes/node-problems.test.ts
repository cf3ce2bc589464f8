import { describe, expect, it } from 'vitest';
import { nodeProblemKinds, sameKinds } from '../../../functions/nodes/node-problems.js';
import type { NodeMetrics } from '../../../protocol/messages.js';

const metrics = (over: Partial<NodeMetrics>): NodeMetrics => ({
  cpuPercent: null,
  memoryUsedMb: null,
  memoryTotalMb: null,
  diskUsedGb: null,
  diskTotalGb: null,
  gpus: [],
  ...over,
});

describe('nodeProblemKinds', () => {
  const container = (kind: string, state: string) => ({
    kind,
    state,
    cpuPercent: null,
    memoryPercent: null,
    memoryUsageMb: null,
  });

  it('offline alone for an offline node, whatever its last readings', () => {
    expect(
      nodeProblemKinds({ containerStats: {}, metrics: metrics({ diskUsedGb: 99, diskTotalGb: 100 }) }, false),
    ).toEqual(['node_offline']);
  });

  it('judges disk and memory against the sample, else the declared sizes; hot GPUs; stopped model servers', () => {
    const kinds = nodeProblemKinds(
      {
        diskGb: 100,
        memoryMb: 1_000,
        metrics: metrics({ diskUsedGb: 80, memoryUsedMb: 950, tegrastats: { temperatures: { GPU: 85 } } }),
        containerStats: { m1: container('model', 'exited'), s1: container('service', 'exited') },
      },
      true,
    );
    expect(kinds).toEqual(['container_exited', 'disk_space', 'gpu_temperature', 'high_memory']);
    expect(nodeProblemKinds({ containerStats: { m1: container('model', 'running') } }, true)).toEqual([]);
  });

  it('sameKinds compares sorted lists', () => {
    expect(sameKinds(['disk_space'], ['disk_space'])).toBe(true);
    expect(sameKinds(['disk_space'], [])).toBe(false);
  });
});
