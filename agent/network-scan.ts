import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import {
  hostAddresses,
  ipv4ToNumber,
  NETWORK_SCAN,
  parseCidr,
  type NetworkScanOutput,
  type ScannedDevice,
} from '../protocol/network.js';

/**
 * network.scan: TCP connect probes over a small IPv4 subnet, MACs from the kernel's ARP table,
 * vendors from a short OUI list, names by reverse DNS. No raw sockets, so no privileges needed.
 */

export interface ScanOptions {
  /** Per connect probe. */
  probeTimeoutMs?: number;
  /** Probes in flight at once. */
  concurrency?: number;
  /** Per reverse lookup. */
  dnsTimeoutMs?: number;
  /** Linux's ARP table; absent elsewhere, then MACs are null. */
  arpPath?: string;
  /** Reverse DNS (tests give their own); default: the system resolvers via node:dns/promises. */
  reverse?: (ip: string) => Promise<string[]>;
}

export class NetworkScanError extends Error {
  override name = 'NetworkScanError';
}

/** OUI prefixes worth naming on a GPU LAN; anything else is null. */
const OUI_VENDORS: Record<string, string> = {
  '00:04:4B': 'NVIDIA',
  '48:B0:2D': 'NVIDIA',
  'B8:27:EB': 'Raspberry Pi',
  'DC:A6:32': 'Raspberry Pi',
  'E4:5F:01': 'Raspberry Pi',
  '28:CD:C1': 'Raspberry Pi',
  '00:E0:4C': 'Realtek',
  '00:1B:21': 'Intel',
  '00:50:56': 'VMware',
  '00:0C:29': 'VMware',
};

const JETSON_HOSTNAME = /agx|orin|nano|xavier|jetson/i;

export function vendorOf(mac: string | null): string | null {
  if (!mac) return null;
  return OUI_VENDORS[mac.slice(0, 8).toUpperCase()] ?? null;
}

export function looksLikeJetson(vendor: string | null, hostname: string | null): boolean {
  return vendor === 'NVIDIA' || (hostname !== null && JETSON_HOSTNAME.test(hostname));
}

/** `ip → mac` of the complete entries of /proc/net/arp (flags 0x0 are unanswered requests). */
export function parseArpTable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    if (!ip || !mac || !flags || Number(flags) === 0 || mac === '00:00:00:00:00:00') continue;
    if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) out.set(ip, mac.toLowerCase());
  }
  return out;
}

async function readArp(path: string): Promise<Map<string, string>> {
  try {
    return parseArpTable(await readFile(path, 'utf8'));
  } catch {
    return new Map(); // not Linux, or not readable: MACs stay null
  }
}

/** True when a TCP connection to ip:port is accepted within the timeout. */
export function probe(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function defaultReverse(timeoutMs: number): (ip: string) => Promise<string[]> {
  return (ip) => new Resolver({ timeout: timeoutMs, tries: 1 }).reverse(ip);
}

async function hostnameOf(
  reverse: (ip: string) => Promise<string[]>,
  ip: string,
  timeoutMs: number,
): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    // The resolver's own timeout is per try; this bounds the whole lookup.
    const names = await Promise.race([
      reverse(ip),
      new Promise<string[]>((resolve) => (timer = setTimeout(() => resolve([]), timeoutMs))),
    ]);
    return names[0]?.replace(/\.$/, '') || null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

export async function scanNetwork(subnet: string, ports: number[], options: ScanOptions = {}): Promise<NetworkScanOutput> {
  let cidr;
  try {
    cidr = parseCidr(subnet);
  } catch (error) {
    throw new NetworkScanError((error as Error).message);
  }
  const wanted = [...new Set(ports)].filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
  if (!wanted.length || wanted.length > NETWORK_SCAN.maxPorts)
    throw new NetworkScanError(`between 1 and ${NETWORK_SCAN.maxPorts} ports (1-65535) are probed`);
  const probeTimeoutMs = options.probeTimeoutMs ?? 500;
  const dnsTimeoutMs = options.dnsTimeoutMs ?? 1000;
  const concurrency = Math.max(1, options.concurrency ?? 128);
  const startedAt = new Date().toISOString();

  const hosts = hostAddresses(cidr);
  const open = new Map<string, number[]>();
  const probes = hosts.flatMap((ip) => wanted.map((port) => ({ ip, port })));
  await pool(probes, concurrency, async ({ ip, port }) => {
    if (await probe(ip, port, probeTimeoutMs)) open.set(ip, [...(open.get(ip) ?? []), port]);
  });
  // Read after the probes: they made the kernel resolve the neighbours it can reach.
  const arp = await readArp(options.arpPath ?? '/proc/net/arp');

  const found = hosts.filter((ip) => open.has(ip) || arp.has(ip));
  const reverse = options.reverse ?? defaultReverse(dnsTimeoutMs);
  const devices: ScannedDevice[] = [];
  await pool(found, Math.min(concurrency, 32), async (ip) => {
    const hostname = await hostnameOf(reverse, ip, dnsTimeoutMs);
    const mac = arp.get(ip) ?? null;
    const vendor = vendorOf(mac);
    devices.push({
      ip,
      hostname,
      mac,
      vendor,
      isJetson: looksLikeJetson(vendor, hostname),
      ports: (open.get(ip) ?? []).sort((a, b) => a - b),
    });
  });
  devices.sort((a, b) => ipv4ToNumber(a.ip)! - ipv4ToNumber(b.ip)!);
  return { subnet: cidr.cidr, devices, scanned: hosts.length, startedAt, finishedAt: new Date().toISOString() };
}
