import { readFileSync } from 'node:fs';
import type { NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  collectSystemInfo,
  cpuPercentBetween,
  cpuTimesFromOsCpus,
  diskFromStatfs,
  externalAddresses,
  parseMeminfo,
  parseOsRelease,
  parseProcStat,
} from '../../../../agent/collectors/system.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/agent/', import.meta.url));
const server = join(fixtures, 'roots', 'x86-server');
const fixture = (path: string): string => readFileSync(join(fixtures, path), 'utf8');

describe('CPU', () => {
  it('reads the aggregate line of /proc/stat, iowait as idle, guest not double-counted', () => {
    expect(parseProcStat(fixture('roots/x86-server/proc/stat'))).toEqual({ idle: 81_000, total: 94_850 });
  });

  it('computes busy percent between two samples', () => {
    const before = parseProcStat(fixture('roots/x86-server/proc/stat'));
    const after = parseProcStat(fixture('system/proc-stat-later.txt'));
    // 1850 ticks passed, 900 idle: 950 / 1850 = 51.35 %.
    expect(before && after && cpuPercentBetween(before, after)).toBe(51.4);
  });

  it('returns null when no time passed, and clamps', () => {
    expect(cpuPercentBetween({ idle: 5, total: 10 }, { idle: 5, total: 10 })).toBeNull();
    expect(cpuPercentBetween({ idle: 0, total: 0 }, { idle: 0, total: 100 })).toBe(100);
  });

  it('returns null for text without a cpu line', () => {
    expect(parseProcStat('intr 1 2 3\n')).toBeNull();
  });

  it('sums os.cpus() times', () => {
    const times = { user: 100, nice: 0, sys: 50, idle: 800, irq: 50 };
    expect(
      cpuTimesFromOsCpus([
        { model: 'x', speed: 1, times },
        { model: 'x', speed: 1, times },
      ]),
    ).toEqual({ idle: 1600, total: 2000 });
  });
});

describe('parseMeminfo', () => {
  it('uses MemAvailable', () => {
    expect(parseMeminfo(fixture('roots/x86-server/proc/meminfo'))).toEqual({
      totalBytes: 263_856_012 * 1024,
      availableBytes: 240_123_456 * 1024,
      usedBytes: (263_856_012 - 240_123_456) * 1024,
    });
  });

  it('falls back to MemFree + Buffers + Cached on old kernels', () => {
    expect(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n')).toEqual({
      totalBytes: 1_024_000,
      availableBytes: 409_600,
      usedBytes: 614_400,
    });
  });

  it('returns null without MemTotal', () => {
    expect(parseMeminfo('')).toBeNull();
  });
});

describe('parseOsRelease', () => {
  it('unquotes values', () => {
    const fields = parseOsRelease(fixture('roots/x86-server/etc/os-release'));
    expect(fields['PRETTY_NAME']).toBe('Ubuntu 22.04.4 LTS');
    expect(fields['VERSION_CODENAME']).toBe('jammy');
    expect(parseOsRelease(`NAME='Alpine Linux'\r\nX="say \\"hi\\""\n# comment\n`)).toEqual({
      NAME: 'Alpine Linux',
      X: 'say "hi"',
    });
  });
});

describe('diskFromStatfs', () => {
  it('reports space available to workloads, not to root', () => {
    expect(diskFromStatfs('/data', { bsize: 4096, blocks: 1000, bfree: 300, bavail: 250 })).toEqual({
      path: '/data',
      totalBytes: 4_096_000,
      freeBytes: 1_024_000,
      usedBytes: 2_867_200,
    });
  });
});

describe('externalAddresses', () => {
  it('drops loopback and IPv6 link-local', () => {
    const iface = (address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo =>
      ({
        address,
        family,
        internal,
        netmask: '',
        mac: '02:00:00:00:00:01',
        cidr: `${address}/24`,
        ...(family === 'IPv6' ? { scopeid: 0 } : {}),
      }) as NetworkInterfaceInfo;
    expect(
      externalAddresses({
        lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
        eth0: [
          iface('10.0.0.5', 'IPv4', false),
          iface('fe80::1', 'IPv6', false),
          iface('2001:db8::5', 'IPv6', false),
        ],
        docker0: undefined,
      }),
    ).toEqual([
      {
        interface: 'eth0',
        address: '10.0.0.5',
        family: 'IPv4',
        cidr: '10.0.0.5/24',
        mac: '02:00:00:00:00:01',
      },
      {
        interface: 'eth0',
        address: '2001:db8::5',
        family: 'IPv6',
        cidr: '2001:db8::5/24',
        mac: '02:00:00:00:00:01',
      },
    ]);
  });
});

describe('collectSystemInfo', () => {
  it('reads /proc and /etc under fsRoot', async () => {
    const info = await collectSystemInfo({ fsRoot: server, sampleMs: 1 });
    expect(info.osName).toBe('Ubuntu 22.04.4 LTS');
    expect(info.memory.totalBytes).toBe(263_856_012 * 1024);
    // The fixture /proc/stat does not change between samples.
    expect(info.cpuPercent).toBeNull();
    expect(info.disk?.path).toBe(server);
    expect(info.disk?.totalBytes).toBeGreaterThan(0);
  });

  it('reads this machine', async () => {
    const info = await collectSystemInfo({ sampleMs: 50 });
    expect(info.hostname).not.toBe('');
    expect(info.cpuCount).toBeGreaterThan(0);
    expect(info.memory.totalBytes).toBeGreaterThan(info.memory.usedBytes);
    expect(info.loadAverage).toHaveLength(3);
    expect(info.addresses.every((a) => a.address !== '127.0.0.1')).toBe(true);
    if (info.cpuPercent !== null) {
      expect(info.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(info.cpuPercent).toBeLessThanOrEqual(100);
    }
  });
});
