import { describe, expect, it } from 'vitest';
import { computeStats } from '../../../../agent/engine/stats.js';

describe('computeStats', () => {
  it("uses Docker's precpu sample when present", () => {
    const { stats } = computeStats({
      cpu_stats: {
        cpu_usage: { total_usage: 2_000_000_000 },
        system_cpu_usage: 20_000_000_000,
        online_cpus: 4,
      },
      precpu_stats: { cpu_usage: { total_usage: 1_000_000_000 }, system_cpu_usage: 10_000_000_000 },
      memory_stats: {
        usage: 300 * 1024 * 1024,
        limit: 1024 * 1024 * 1024,
        stats: { inactive_file: 100 * 1024 * 1024 },
      },
    });
    expect(stats).toEqual({ cpuPercent: 40, memoryUsageMb: 200, memoryLimitMb: 1024, memoryPercent: 19.53 });
  });

  it("falls back to the caller's previous sample when precpu is empty (Podman), null without one", () => {
    const raw = {
      cpu_stats: {
        cpu_usage: { total_usage: 57_136_518, percpu_usage: [1, 2] },
        system_cpu_usage: 634_258_345_322,
        online_cpus: 2,
      },
      precpu_stats: { cpu_usage: { total_usage: 0 } },
      memory_stats: { usage: 634_880, limit: 67_108_864 },
    };
    const first = computeStats(raw);
    expect(first.stats.cpuPercent).toBeNull();
    expect(first.stats.memoryLimitMb).toBe(64);
    const later = computeStats(
      {
        ...raw,
        cpu_stats: {
          ...raw.cpu_stats,
          cpu_usage: { total_usage: 57_136_518 + 500_000_000 },
          system_cpu_usage: 634_258_345_322 + 2_000_000_000,
        },
      },
      first.sample!,
    );
    expect(later.stats.cpuPercent).toBe(50);
  });
});
