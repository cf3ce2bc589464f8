import { readdir, readFile } from 'node:fs/promises';
import type { ContainerStats } from './types.js';

/** What the process driver reads of the host's processes (/proc) and how it signals a group. */

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // gone already
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
export const signalNumber = (signal: NodeJS.Signals) => SIGNALS[signal] ?? 15;

/** Linux's USER_HZ. */
export const CLOCK_TICKS = 100;

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces). */
async function statFields(pid: number | string): Promise<string[] | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!text) return null;
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** /proc/<pid>/stat start time, so a reused pid is never taken for ours. */
export async function startTicks(pid: number): Promise<string | null> {
  return (await statFields(pid))?.[19] ?? null;
}

export async function alive(pid: number, ticks: string | null): Promise<boolean> {
  const fields = await statFields(pid);
  if (!fields || fields[0] === 'Z') return false;
  return ticks === null || fields[19] === ticks;
}

/** Resident memory and CPU ticks of every process whose group is `pgid`. */
export async function groupUsage(pgid: number): Promise<{ rssBytes: number; cpuTicks: number }> {
  let rssBytes = 0;
  let cpuTicks = 0;
  const entries = await readdir('/proc').catch(() => [] as string[]);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const f = await statFields(entry);
    if (!f || Number(f[2]) !== pgid) continue;
    cpuTicks += Number(f[11]) + Number(f[12]);
    rssBytes += Number(f[21]) * 4096;
  }
  return { rssBytes, cpuTicks };
}

/** A group's stats from its usage now and the CPU sample before (none: not running). */
export function usageStats(
  usage: { rssBytes: number; cpuTicks: number } | null,
  before: { ticks: number; at: number } | undefined,
  now: number,
  memoryLimitMb: number | null,
): ContainerStats {
  if (!usage) return { cpuPercent: null, memoryUsageMb: null, memoryLimitMb, memoryPercent: null };
  const cpuPercent =
    before && now > before.at
      ? (((usage.cpuTicks - before.ticks) / CLOCK_TICKS) * 100_000) / (now - before.at)
      : null;
  const memoryUsageMb = usage.rssBytes / (1024 * 1024);
  return {
    cpuPercent: cpuPercent === null ? null : Math.max(0, cpuPercent),
    memoryUsageMb,
    memoryLimitMb,
    memoryPercent: memoryLimitMb ? (memoryUsageMb / memoryLimitMb) * 100 : null,
  };
}
