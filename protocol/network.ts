import * as z from 'zod';

/** Bounds of network.scan; the agent enforces them too, whatever the control plane sent. */
export const NETWORK_SCAN = {
  defaultPorts: [22, 80, 443, 5000, 8080, 8188, 8765],
  /** A /22: larger subnets are refused (a scan must stay a LAN sweep, not a range scan). */
  maxAddresses: 1024,
  maxPorts: 32,
} as const;

/** An IPv4 subnet, canonical (host bits cleared). */
export interface Cidr {
  /** `a.b.c.d/n` with the host bits zero. */
  cidr: string;
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
  size: number;
}

export class CidrError extends Error {
  override name = 'CidrError';
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** `a.b.c.d` as an unsigned 32-bit number; undefined when it is not dotted-quad IPv4. */
export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Parses `a.b.c.d/n` (or a bare address, a /32). Host bits are cleared, as Python's
 * ip_network(strict=False) does; throws CidrError with a message fit for a 422.
 */
export function parseCidr(text: string, maxAddresses: number = NETWORK_SCAN.maxAddresses): Cidr {
  const [ip, prefixText, ...rest] = text.trim().split('/');
  if (rest.length || ip === undefined) throw new CidrError(`${text} is not an IPv4 subnet (a.b.c.d/n)`);
  const addr = ipv4ToNumber(ip);
  if (addr === undefined) throw new CidrError(`${text} is not an IPv4 subnet (a.b.c.d/n); IPv6 is not scanned`);
  const prefix = prefixText === undefined ? 32 : /^\d{1,2}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= 32)) throw new CidrError(`${text}: the prefix length must be 0 to 32`);
  const size = 2 ** (32 - prefix);
  if (size > maxAddresses)
    throw new CidrError(
      `${text} holds ${size} addresses; at most ${maxAddresses} are scanned (/${32 - Math.log2(maxAddresses)} or longer)`,
    );
  const base = prefix === 0 ? 0 : (addr & (~0 << (32 - prefix))) >>> 0;
  return { cidr: `${numberToIpv4(base)}/${prefix}`, base, prefix, size };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const n = ipv4ToNumber(ip);
  return n !== undefined && n >= c.base && n < c.base + c.size;
}

/** The addresses probed: every one, less the network and broadcast addresses of a /30 or wider. */
export function hostAddresses(c: Cidr): string[] {
  const first = c.prefix <= 30 ? c.base + 1 : c.base;
  const last = c.prefix <= 30 ? c.base + c.size - 2 : c.base + c.size - 1;
  const out: string[] = [];
  for (let n = first; n <= last; n++) out.push(numberToIpv4(n));
  return out;
}

/** One host a network.scan found (agent's view; in_swarm is the control plane's). */
export const scannedDevice = z.object({
  ip: z.string(),
  hostname: z.string().nullable(),
  mac: z.string().nullable(),
  vendor: z.string().nullable(),
  isJetson: z.boolean(),
  ports: z.array(z.number().int()),
});
export type ScannedDevice = z.infer<typeof scannedDevice>;

/** What a network.scan result carries. */
export const networkScanOutput = z.object({
  subnet: z.string(),
  devices: z.array(scannedDevice),
  /** Addresses probed. */
  scanned: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string(),
});
export type NetworkScanOutput = z.infer<typeof networkScanOutput>;
