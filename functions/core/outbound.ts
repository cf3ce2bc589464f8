import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Outbound requests to URLs that came from the API or from settings (webhooks). Checked when
 * given and again when sent, against the address actually connected to: loopback, private,
 * link-local (cloud metadata included), multicast and other special ranges are refused unless
 * OUTBOUND_ALLOWLIST names the host, the address or a range holding it. Redirects are never
 * followed: a 3xx is the receiver's answer.
 */

export class OutboundRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefusedError';
  }
}

type Family = 'ipv4' | 'ipv6';
const RANGES: { cidr: string; family: Family; kind: string }[] = [
  { cidr: '169.254.169.254/32', family: 'ipv4', kind: 'cloud metadata' },
  { cidr: 'fd00:ec2::254/128', family: 'ipv6', kind: 'cloud metadata' },
  { cidr: '0.0.0.0/8', family: 'ipv4', kind: '"this network"' },
  { cidr: '10.0.0.0/8', family: 'ipv4', kind: 'private' },
  { cidr: '100.64.0.0/10', family: 'ipv4', kind: 'shared (carrier-grade NAT)' },
  { cidr: '127.0.0.0/8', family: 'ipv4', kind: 'loopback' },
  { cidr: '169.254.0.0/16', family: 'ipv4', kind: 'link-local' },
  { cidr: '172.16.0.0/12', family: 'ipv4', kind: 'private' },
  { cidr: '192.0.0.0/24', family: 'ipv4', kind: 'IETF protocol assignment' },
  { cidr: '192.168.0.0/16', family: 'ipv4', kind: 'private' },
  { cidr: '198.18.0.0/15', family: 'ipv4', kind: 'benchmarking' },
  { cidr: '224.0.0.0/4', family: 'ipv4', kind: 'multicast' },
  { cidr: '240.0.0.0/4', family: 'ipv4', kind: 'reserved' },
  { cidr: '::/128', family: 'ipv6', kind: 'unspecified' },
  { cidr: '::1/128', family: 'ipv6', kind: 'loopback' },
  { cidr: '100::/64', family: 'ipv6', kind: 'discard' },
  { cidr: 'fc00::/7', family: 'ipv6', kind: 'private (unique local)' },
  { cidr: 'fe80::/10', family: 'ipv6', kind: 'link-local' },
  { cidr: 'ff00::/8', family: 'ipv6', kind: 'multicast' },
];

const special = RANGES.map((r) => {
  const [net, bits] = r.cidr.split('/') as [string, string];
  const list = new BlockList();
  list.addSubnet(net, Number(bits), r.family);
  return { list, family: r.family, kind: r.kind };
});

/** IPv4-mapped and NAT64 IPv6 addresses reach an IPv4 host: judge that host. */
function embeddedIpv4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** What is special about an address (`loopback`, `cloud metadata`...), or undefined for a public one. */
export function specialRange(address: string): string | undefined {
  const v4 = embeddedIpv4(address);
  const addr = v4 ?? address;
  const family: Family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
  return special.find((s) => s.family === family && s.list.check(addr, family))?.kind;
}

export interface OutboundAllowlist {
  names: Set<string>;
  ranges: BlockList;
}

/** `OUTBOUND_ALLOWLIST`: comma-separated host names, addresses and CIDR ranges. Throws on a bad range. */
export function parseAllowlist(list: string): OutboundAllowlist {
  const names = new Set<string>();
  const ranges = new BlockList();
  for (const raw of list.split(',')) {
    const entry = raw
      .trim()
      .toLowerCase()
      .replace(/^\[(.*)\]$/, '$1');
    if (!entry) continue;
    const [net, bits, extra] = entry.split('/');
    const family = isIP(net!);
    if (bits !== undefined) {
      const n = Number(bits);
      if (!family || extra !== undefined || !Number.isInteger(n) || n < 0 || n > (family === 4 ? 32 : 128))
        throw new Error(`not a CIDR range: ${raw.trim()}`);
      ranges.addSubnet(net!, n, family === 4 ? 'ipv4' : 'ipv6');
    } else if (family) ranges.addAddress(entry, family === 4 ? 'ipv4' : 'ipv6');
    else if (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(entry)) names.add(entry);
    else throw new Error(`not a host name, address or CIDR range: ${raw.trim()}`);
  }
  return { names, ranges };
}

const allowlists = new Map<string, OutboundAllowlist>();
function allowlistOf(setting: string): OutboundAllowlist {
  let parsed = allowlists.get(setting);
  if (!parsed) {
    parsed = parseAllowlist(setting);
    allowlists.set(setting, parsed);
  }
  return parsed;
}

function refusal(address: string, allow: OutboundAllowlist): string | undefined {
  const kind = specialRange(address);
  if (!kind) return undefined;
  const v4 = embeddedIpv4(address);
  const family: Family = isIP(v4 ?? address) === 6 ? 'ipv6' : 'ipv4';
  if (allow.ranges.check(v4 ?? address, family)) return undefined;
  return `${address} is a ${kind} address (OUTBOUND_ALLOWLIST may name it)`;
}

const hostOf = (url: URL) =>
  url.hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');

/**
 * Checks a URL without resolving it: the scheme, and the host when it is an address. With
 * `loopbackNames`, also `localhost` names (settings read at start, where no DNS is asked;
 * delivery checks the resolved address again). Returns why it is refused, or undefined.
 */
export function staticUrlRefusal(url: string, allowlist: string, loopbackNames = true): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'only http(s) URLs';
  const allow = allowlistOf(allowlist);
  const host = hostOf(u);
  if (allow.names.has(host)) return undefined;
  if (isIP(host)) return refusal(host, allow);
  if (loopbackNames && (host === 'localhost' || host.endsWith('.localhost')))
    return `${host} is a loopback name (OUTBOUND_ALLOWLIST may name it)`;
  return undefined;
}

/** Checks a URL as given through the API: scheme, and every address its host resolves to. */
export async function checkOutboundUrl(url: string, allowlist: string): Promise<void> {
  const early = staticUrlRefusal(url, allowlist, false);
  if (early) throw new OutboundRefusedError(early);
  const host = hostOf(new URL(url));
  const allow = allowlistOf(allowlist);
  if (allow.names.has(host) || isIP(host)) return;
  let addresses: LookupAddress[];
  try {
    addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
      dnsLookup(host, { all: true }, (error, found) => (error ? reject(error) : resolve(found))),
    );
  } catch {
    throw new OutboundRefusedError(`${host} does not resolve`);
  }
  for (const a of addresses) {
    const why = refusal(a.address, allow);
    if (why) throw new OutboundRefusedError(`${host} resolves to ${why}`);
  }
}

/** dns.lookup that refuses, at connection time, any address the allowlist does not cover. */
function guardedLookup(allow: OutboundAllowlist, trustedName: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return (callback as (e: Error) => void)(error);
      const why = trustedName ? undefined : addresses.map((a) => refusal(a.address, allow)).find(Boolean);
      if (why || !addresses.length)
        return (callback as (e: Error) => void)(
          new OutboundRefusedError(`${hostname} resolves to ${why ?? 'nothing'}`),
        );
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      (callback as (e: null, a: string, f: number) => void)(
        null,
        addresses[0]!.address,
        addresses[0]!.family,
      );
    });
  };
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text, when `maxBodyBytes` asked for it. */
  body?: string;
}

export class OutboundBodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`the answer is larger than ${limit} bytes`);
    this.name = 'OutboundBodyTooLargeError';
  }
}

/**
 * One request to an outside receiver: the connected address is checked (no DNS rebinding
 * between a check and the connection), no redirect is followed, the body is discarded.
 * Throws OutboundRefusedError for a refused destination, other errors for network failures.
 */
export async function outboundRequest(
  url: string,
  allowlist: string,
  init: {
    method: 'POST' | 'GET';
    headers?: Record<string, string>;
    body?: string;
    timeoutMs: number;
    /** Read the answer's body, up to this many bytes (more is an OutboundBodyTooLargeError); else it is discarded. */
    maxBodyBytes?: number;
  },
): Promise<OutboundResponse> {
  const early = staticUrlRefusal(url, allowlist, false);
  if (early) throw new OutboundRefusedError(early);
  const u = new URL(url);
  const allow = allowlistOf(allowlist);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<OutboundResponse>((resolve, reject) => {
    const req = send(
      u,
      {
        method: init.method,
        headers: {
          ...init.headers,
          ...(init.body !== undefined ? { 'content-length': String(Buffer.byteLength(init.body)) } : {}),
        },
        lookup: guardedLookup(allow, allow.names.has(hostOf(u))),
        // A fresh connection each time: a pooled socket would skip the lookup above.
        agent: false,
        signal: AbortSignal.timeout(init.timeoutMs),
      },
      (res) => {
        const limit = init.maxBodyBytes;
        if (limit === undefined) {
          res.resume();
          res.on('error', () => undefined);
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            req.destroy();
            reject(new OutboundBodyTooLargeError(limit));
          } else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}
