import type { ContainerStats } from './types.js';

const MIB = 1024 * 1024;

/** The parts of a stats answer the agent reads; engines differ in which are present. */
export interface RawStats {
  cpu_stats?: {
    cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

export interface CpuSample {
  total: number;
  system: number;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * Docker's formula (the CLI's): cpu% = Δcontainer / Δsystem × online CPUs × 100, memory without
 * the reclaimable page cache. Podman answers stream=false with an empty precpu_stats, so the
 * previous sample the caller kept stands in for it; with neither, cpuPercent is null, never a guess.
 */
export function computeStats(
  raw: RawStats,
  previous?: CpuSample,
): { stats: ContainerStats; sample: CpuSample | null } {
  const cpu = raw.cpu_stats;
  const total = cpu?.cpu_usage?.total_usage;
  const system = cpu?.system_cpu_usage;
  const sample = total !== undefined && system !== undefined ? { total, system } : null;
  const pre = raw.precpu_stats;
  const before: CpuSample | undefined =
    pre?.system_cpu_usage && pre.cpu_usage?.total_usage !== undefined
      ? { total: pre.cpu_usage.total_usage, system: pre.system_cpu_usage }
      : previous;
  let cpuPercent: number | null = null;
  if (sample && before) {
    const dCpu = sample.total - before.total;
    const dSys = sample.system - before.system;
    const online = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1;
    if (dSys > 0 && dCpu >= 0) cpuPercent = round2((dCpu / dSys) * online * 100);
  }

  const mem = raw.memory_stats;
  let memoryUsageMb: number | null = null;
  let memoryLimitMb: number | null = null;
  let memoryPercent: number | null = null;
  if (mem?.usage !== undefined) {
    // cgroup v2: inactive_file; v1: total_inactive_file; both are cache the kernel can drop.
    const s = mem.stats ?? {};
    const cache = s['inactive_file'] ?? s['total_inactive_file'] ?? 0;
    const used = cache < mem.usage ? mem.usage - cache : mem.usage;
    memoryUsageMb = round2(used / MIB);
    if (mem.limit) {
      memoryLimitMb = round2(mem.limit / MIB);
      memoryPercent = round2((used / mem.limit) * 100);
    }
  }
  return { stats: { cpuPercent, memoryUsageMb, memoryLimitMb, memoryPercent }, sample };
}
