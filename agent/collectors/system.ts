import os, { type CpuInfo, type NetworkInterfaceInfo } from 'node:os';
import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Cumulative CPU time, in any one unit (jiffies or ms). */
export interface CpuTimes {
  idle: number;
  total: number;
}

export interface MemoryInfo {
  totalBytes: number;
  /** What new work can use without swapping (MemAvailable), not just MemFree. */
  availableBytes: number;
  usedBytes: number;
}

export interface DiskInfo {
  path: string;
  totalBytes: number;
  /** Free to unprivileged users (f_bavail): the space a workload can actually use. */
  freeBytes: number;
  usedBytes: number;
}

export interface NetAddress {
  interface: string;
  address: string;
  family: 'IPv4' | 'IPv6';
  cidr: string | null;
  mac: string;
}

export interface SystemInfo {
  hostname: string;
  /** Node's names: 'x64', 'arm64'. */
  arch: string;
  platform: string;
  kernelRelease: string;
  /** PRETTY_NAME from os-release, e.g. 'Ubuntu 22.04.4 LTS'. */
  osName: string | null;
  cpuCount: number;
  cpuModel: string | null;
  /** Busy percent of all CPUs over the sample window; null when it could not be measured. */
  cpuPercent: number | null;
  loadAverage: [number, number, number];
  memory: MemoryInfo;
  disk: DiskInfo | null;
  addresses: NetAddress[];
  uptimeSeconds: number;
}

/** The aggregate `cpu` line of /proc/stat. iowait counts as idle; guest time is already in user. */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 4 || v.some((n) => !Number.isFinite(n))) return null;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  return { idle: idle + iowait, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** The same totals from os.cpus(), for platforms without /proc. */
export function cpuTimesFromOsCpus(cpus: readonly CpuInfo[]): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const { times } of cpus) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}

/** Busy percent between two samples, one decimal; null if no time passed. */
export function cpuPercentBetween(before: CpuTimes, after: CpuTimes): number | null {
  const total = after.total - before.total;
  const idle = after.idle - before.idle;
  if (total <= 0) return null;
  const busy = Math.min(Math.max((total - idle) / total, 0), 1);
  return Math.round(busy * 1000) / 10;
}

/** /proc/meminfo's MemTotal and MemAvailable (kernels before 3.14 lack it: MemFree+Buffers+Cached). */
export function parseMeminfo(text: string): MemoryInfo | null {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s*kB)?/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) kib.set(m[1], Number(m[2]));
  }
  const total = kib.get('MemTotal');
  if (total === undefined) return null;
  const available =
    kib.get('MemAvailable') ??
    (kib.get('MemFree') ?? 0) + (kib.get('Buffers') ?? 0) + (kib.get('Cached') ?? 0);
  return {
    totalBytes: total * 1024,
    availableBytes: available * 1024,
    usedBytes: (total - available) * 1024,
  };
}

/** os-release KEY=value lines; values may be single- or double-quoted. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined) continue;
    let value = m[2];
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    out[m[1]] = value;
  }
  return out;
}

export function diskFromStatfs(
  path: string,
  stats: { bsize: number; blocks: number; bfree: number; bavail: number },
): DiskInfo {
  return {
    path,
    totalBytes: stats.blocks * stats.bsize,
    freeBytes: stats.bavail * stats.bsize,
    usedBytes: (stats.blocks - stats.bfree) * stats.bsize,
  };
}

/** Addresses other hosts could reach: not loopback, not IPv6 link-local (fe80::/10). */
export function externalAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): NetAddress[] {
  const out: NetAddress[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv6' && /^fe[89ab]/i.test(info.address)) continue;
      out.push({
        interface: name,
        address: info.address,
        family: info.family,
        cidr: info.cidr,
        mac: info.mac,
      });
    }
  }
  return out;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

async function sampleCpuTimes(procStatPath: string): Promise<CpuTimes | null> {
  const text = await readText(procStatPath);
  const fromProc = text === null ? null : parseProcStat(text);
  if (fromProc !== null) return fromProc;
  const cpus = os.cpus();
  return cpus.length > 0 ? cpuTimesFromOsCpus(cpus) : null;
}

export interface CollectSystemOptions {
  /** Where /proc and /etc are read from. */
  fsRoot?: string;
  /** Filesystem to report; defaults to the root of fsRoot. */
  diskPath?: string;
  /** Time between the two CPU samples. */
  sampleMs?: number;
}

/** Reads the host's identity and load. Never throws: parts it cannot read come back null. */
export async function collectSystemInfo(options: CollectSystemOptions = {}): Promise<SystemInfo> {
  const fsRoot = options.fsRoot ?? '/';
  const diskPath = options.diskPath ?? fsRoot;
  const procStat = join(fsRoot, 'proc/stat');

  const before = await sampleCpuTimes(procStat);
  await sleep(options.sampleMs ?? 250);
  const after = await sampleCpuTimes(procStat);

  const [meminfo, osRelease, etcFallback, disk] = await Promise.all([
    readText(join(fsRoot, 'proc/meminfo')),
    readText(join(fsRoot, 'etc/os-release')),
    readText(join(fsRoot, 'usr/lib/os-release')),
    statfs(diskPath).then(
      (s) => diskFromStatfs(diskPath, s),
      () => null,
    ),
  ]);
  const osFields = parseOsRelease(osRelease ?? etcFallback ?? '');

  const cpus = os.cpus();
  const total = os.totalmem();
  const free = os.freemem();
  const memory = (meminfo === null ? null : parseMeminfo(meminfo)) ?? {
    totalBytes: total,
    availableBytes: free,
    usedBytes: total - free,
  };
  const [l1 = 0, l5 = 0, l15 = 0] = os.loadavg();

  return {
    hostname: os.hostname(),
    arch: os.arch(),
    platform: os.platform(),
    kernelRelease: os.release(),
    osName: osFields['PRETTY_NAME'] ?? null,
    // os.cpus() can be empty in some sandboxes.
    cpuCount: cpus.length > 0 ? cpus.length : os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() || null,
    cpuPercent: before === null || after === null ? null : cpuPercentBetween(before, after),
    loadAverage: [l1, l5, l15],
    memory,
    disk,
    addresses: externalAddresses(os.networkInterfaces()),
    uptimeSeconds: os.uptime(),
  };
}
