import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  looksLikeJetson,
  NetworkScanError,
  parseArpTable,
  scanNetwork,
  vendorOf,
} from '../../../agent/network-scan.js';
import { cidrContains, CidrError, hostAddresses, parseCidr } from '../../../protocol/network.js';

describe('parseCidr', () => {
  it('clears host bits and sizes the subnet', () => {
    expect(parseCidr('192.168.1.77/24')).toEqual({ cidr: '192.168.1.0/24', base: 0xc0a80100, prefix: 24, size: 256 });
    expect(parseCidr('10.1.7.9/22')).toMatchObject({ cidr: '10.1.4.0/22', size: 1024 });
    expect(parseCidr(' 172.16.0.9 ')).toMatchObject({ cidr: '172.16.0.9/32', size: 1 });
    expect(parseCidr('127.0.0.0/29')).toMatchObject({ cidr: '127.0.0.0/29', size: 8 });
  });

  it('refuses subnets over 1024 addresses, non-IPv4 and malformed input', () => {
    expect(() => parseCidr('10.0.0.0/21')).toThrow(/2048 addresses; at most 1024 .*\/22/);
    expect(() => parseCidr('10.0.0.0/8')).toThrow(CidrError);
    for (const bad of ['', '10.0.0/24', '10.0.0.256/24', '10.0.0.1/33', '10.0.0.1/-1', '10.0.0.1/2x', 'fe80::/64', '01.2.3.4/24', '1.2.3.4/24/1'])
      expect(() => parseCidr(bad), bad).toThrow(CidrError);
  });

  it('lists host addresses without network and broadcast, and tests membership', () => {
    expect(hostAddresses(parseCidr('127.0.0.0/29'))).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']);
    expect(hostAddresses(parseCidr('10.0.0.4/31'))).toEqual(['10.0.0.4', '10.0.0.5']);
    expect(hostAddresses(parseCidr('10.0.0.4/32'))).toEqual(['10.0.0.4']);
    expect(hostAddresses(parseCidr('10.0.0.0/22'))).toHaveLength(1022);
    const c = parseCidr('192.168.4.0/23');
    expect(cidrContains(c, '192.168.5.255')).toBe(true);
    expect(cidrContains(c, '192.168.6.0')).toBe(false);
    expect(cidrContains(c, 'not-an-ip')).toBe(false);
  });
});

describe('ARP table, OUI vendors, Jetson guess', () => {
  it('keeps complete entries only, MACs lowercased', () => {
    const table = parseArpTable(
      [
        'IP address       HW type     Flags       HW address            Mask     Device',
        '192.168.1.182    0x1         0x2         48:B0:2D:11:22:33     *        eth0',
        '192.168.1.9      0x1         0x0         00:00:00:00:00:00     *        eth0',
        '192.168.1.10     0x1         0x2         garbage               *        eth0',
        '',
      ].join('\n'),
    );
    expect([...table]).toEqual([['192.168.1.182', '48:b0:2d:11:22:33']]);
  });

  it('names NVIDIA by OUI; Jetson by vendor or hostname', () => {
    expect(vendorOf('00:04:4b:aa:bb:cc')).toBe('NVIDIA');
    expect(vendorOf('48:B0:2D:aa:bb:cc')).toBe('NVIDIA');
    expect(vendorOf('12:34:56:aa:bb:cc')).toBeNull();
    expect(vendorOf(null)).toBeNull();
    expect(looksLikeJetson('NVIDIA', null)).toBe(true);
    for (const h of ['agx0', 'orin-nx.lan', 'NANO-2', 'xavier', 'my-jetson']) expect(looksLikeJetson(null, h), h).toBe(true);
    expect(looksLikeJetson('Intel', 'gpu-server-1')).toBe(false);
  });
});

describe('scanNetwork against loopback listeners', () => {
  const servers: Server[] = [];
  let dir: string;
  let p: number;
  let q: number;

  const listen = (host: string, port: number) =>
    new Promise<number>((resolve, reject) => {
      const s = createServer((socket) => socket.destroy());
      s.once('error', reject);
      s.listen(port, host, () => {
        servers.push(s);
        resolve((s.address() as AddressInfo).port);
      });
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netscan-'));
    // 127.0.0.2: port p; 127.0.0.3: ports p and q. Nothing listens on .4–.6.
    p = await listen('127.0.0.2', 0);
    await listen('127.0.0.3', p);
    q = await listen('127.0.0.3', 0);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  const noDns = async () => {
    throw new Error('ENOTFOUND');
  };

  it('lists the hosts whose probed ports answer, with those ports', async () => {
    const out = await scanNetwork('127.0.0.0/29', [q, p], {
      arpPath: join(dir, 'missing'),
      reverse: noDns,
      probeTimeoutMs: 300,
    });
    expect(out.subnet).toBe('127.0.0.0/29');
    expect(out.scanned).toBe(6);
    expect(out.devices).toEqual([
      { ip: '127.0.0.2', hostname: null, mac: null, vendor: null, isJetson: false, ports: [p] },
      { ip: '127.0.0.3', hostname: null, mac: null, vendor: null, isJetson: false, ports: [p, q].sort((a, b) => a - b) },
    ]);
    expect(Date.parse(out.finishedAt)).toBeGreaterThanOrEqual(Date.parse(out.startedAt));
  });

  it('adds ARP neighbours without open ports, with MAC and vendor; names come from reverse DNS', async () => {
    const arpPath = join(dir, 'arp');
    await writeFile(
      arpPath,
      [
        'IP address       HW type     Flags       HW address            Mask     Device',
        '127.0.0.5        0x1         0x2         00:04:4b:01:02:03     *        lo',
        '127.0.0.6        0x1         0x0         00:00:00:00:00:00     *        lo',
        '10.9.9.9         0x1         0x2         00:04:4b:09:09:09     *        eth0',
        '',
      ].join('\n'),
    );
    const out = await scanNetwork('127.0.0.0/29', [p], {
      arpPath,
      reverse: async (ip) => (ip === '127.0.0.2' ? ['orin-nx-01.lan.'] : noDns()),
      concurrency: 1,
    });
    expect(out.devices).toEqual([
      { ip: '127.0.0.2', hostname: 'orin-nx-01.lan', mac: null, vendor: null, isJetson: true, ports: [p] },
      { ip: '127.0.0.3', hostname: null, mac: null, vendor: null, isJetson: false, ports: [p] },
      { ip: '127.0.0.5', hostname: null, mac: '00:04:4b:01:02:03', vendor: 'NVIDIA', isJetson: true, ports: [] },
    ]);
  });

  it('gives up on a reverse lookup that never answers: hostname null', async () => {
    const out = await scanNetwork('127.0.0.2/32', [p], {
      arpPath: join(dir, 'missing'),
      reverse: () => new Promise<string[]>(() => undefined),
      dnsTimeoutMs: 50,
    });
    expect(out.devices).toEqual([{ ip: '127.0.0.2', hostname: null, mac: null, vendor: null, isJetson: false, ports: [p] }]);
  });

  it('refuses subnets over /22 and bad port lists, probing nothing', async () => {
    await expect(scanNetwork('10.0.0.0/16', [22])).rejects.toThrow(NetworkScanError);
    await expect(scanNetwork('10.0.0.0/16', [22])).rejects.toThrow(/65536 addresses/);
    await expect(scanNetwork('127.0.0.0/29', [])).rejects.toThrow(/ports/);
    await expect(scanNetwork('127.0.0.0/29', Array.from({ length: 40 }, (_, i) => i + 1))).rejects.toThrow(/ports/);
  });
});
