import type { AppContext } from '../../core/context.js';
import { HttpError, UnavailableError, UpstreamError } from '../../core/errors.js';
import { outboundRequest, staticUrlRefusal } from '../../core/outbound.js';

/**
 * A Docker Registry HTTP API v2 client: the catalogue and each repository's tags, following the
 * `Link: <…>; rel="next"` pagination both lists use. Credentials (the `registry-auth` secret,
 * `user:password`) go only to the registry's own origin and are never logged.
 */

export const REGISTRY_AUTH_SECRET = 'registry-auth';

export interface RegistryTarget {
  /** `http://127.0.0.1:5000` */
  url: URL;
  /** `127.0.0.1:5000`: what image references start with. */
  host: string;
  /** Plain HTTP: engines must be told to push without TLS. */
  insecure: boolean;
}

/** The configured registry, or 503 saying how to configure one. */
export function registryTarget(ctx: AppContext): RegistryTarget {
  const raw = ctx.config.REGISTRY_URL;
  if (!raw)
    throw new UnavailableError(
      'No image registry is configured: set REGISTRY_URL to a Docker Registry HTTP API v2 (e.g. http://127.0.0.1:5000); credentials, if it needs any, go in the registry-auth secret as user:password',
      'REGISTRY_NOT_CONFIGURED',
    );
  // A setting like a webhook: a registry on loopback, a private range or the metadata address is
  // reached only when OUTBOUND_ALLOWLIST names it (the address it resolves to is checked again per call).
  const refused = staticUrlRefusal(raw, ctx.config.OUTBOUND_ALLOWLIST);
  if (refused)
    throw new UnavailableError(`REGISTRY_URL ${raw} is refused: ${refused}`, 'REGISTRY_NOT_CONFIGURED');
  const url = new URL(raw);
  return { url, host: url.host, insecure: url.protocol === 'http:' };
}

const REGISTRY_MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * fetch through the outbound checks: the address connected to is checked against
 * OUTBOUND_ALLOWLIST (no DNS rebinding to a refused address), and a redirect is an error.
 */
export function outboundFetch(allowlist: string, timeoutMs: number): typeof fetch {
  return async (input, init) => {
    const url = input instanceof URL ? input.href : typeof input === 'string' ? input : input.url;
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const res = await outboundRequest(url, allowlist, {
      method: 'GET',
      headers,
      timeoutMs,
      maxBodyBytes: REGISTRY_MAX_BODY_BYTES,
    }).catch((error: unknown) => {
      const e = error as Error;
      if (e.name === 'AbortError' || e.name === 'TimeoutError')
        throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
      throw new TypeError('fetch failed', { cause: { code: (e as { code?: string }).code ?? e.message } });
    });
    if (res.status >= 300 && res.status < 400)
      throw new TypeError('fetch failed', { cause: { code: `redirect (HTTP ${res.status}) not followed` } });
    const out = new Headers();
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
    return new Response(res.body ?? '', { status: res.status, headers: out });
  };
}

export interface RegistryImage {
  name: string;
  tags: string[];
  full_image: string;
}

export interface RegistryClientOptions {
  /** Entries per page asked for (`n`); the registry may answer fewer. */
  pageSize?: number;
  fetch?: typeof fetch;
  /** OUTBOUND_ALLOWLIST for the default fetch. */
  allowlist?: string;
}

/** Beyond this many pages a registry is assumed to loop. */
const MAX_PAGES = 1000;

export class RegistryClient {
  private readonly pageSize: number;
  private readonly fetchFn: typeof fetch;

  constructor(
    private readonly target: RegistryTarget,
    private readonly auth: string | undefined,
    private readonly timeoutMs: number,
    options: RegistryClientOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 100;
    this.fetchFn = options.fetch ?? outboundFetch(options.allowlist ?? '', timeoutMs);
  }

  static async fromContext(ctx: AppContext, options: RegistryClientOptions = {}): Promise<RegistryClient> {
    const target = registryTarget(ctx);
    return new RegistryClient(
      target,
      await ctx.secrets.get(REGISTRY_AUTH_SECRET),
      ctx.config.REGISTRY_TIMEOUT_MS,
      {
        allowlist: ctx.config.OUTBOUND_ALLOWLIST,
        ...options,
      },
    );
  }

  get host(): string {
    return this.target.host;
  }

  async catalog(): Promise<string[]> {
    const pages = await this.pages(`/v2/_catalog?n=${this.pageSize}`, 'the catalogue');
    return pages.flatMap((p) => (p.body as { repositories?: string[] | null }).repositories ?? []);
  }

  /** A repository's tags; none when the registry no longer knows it (deleted between two calls). */
  async tags(name: string): Promise<string[]> {
    const path = `/v2/${name.split('/').map(encodeURIComponent).join('/')}/tags/list?n=${this.pageSize}`;
    const pages = await this.pages(path, `the tags of ${name}`, true);
    // Registry order is kept; a tag repeated across pages is listed once.
    return [...new Set(pages.flatMap((p) => (p.body as { tags?: string[] | null }).tags ?? []))];
  }

  async images(): Promise<RegistryImage[]> {
    const names = await this.catalog();
    const out: RegistryImage[] = [];
    // Few at a time: a large catalogue must not open hundreds of connections at once.
    for (let i = 0; i < names.length; i += 8) {
      const batch = names.slice(i, i + 8);
      const tags = await Promise.all(batch.map((n) => this.tags(n)));
      batch.forEach((name, j) =>
        out.push({ name, tags: tags[j]!, full_image: `${this.target.host}/${name}` }),
      );
    }
    return out;
  }

  private async pages(first: string, what: string, notFoundIsEmpty = false): Promise<{ body: unknown }[]> {
    const out: { body: unknown }[] = [];
    const seen = new Set<string>();
    let next: URL | undefined = new URL(first, this.target.url);
    while (next && out.length < MAX_PAGES) {
      seen.add(next.href);
      const res = await this.get(next, what);
      if (res.status === 404 && notFoundIsEmpty) return out;
      if (!res.ok) throw this.upstreamError(res.status, what, await res.text().catch(() => ''));
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        throw new UpstreamError(
          `The registry at ${this.target.host} answered ${what} with something that is not JSON`,
          'REGISTRY_ERROR',
        );
      }
      out.push({ body });
      next = nextLink(res.headers.get('link'), next);
      // Another origin would receive the credentials; a repeated page would loop.
      if (next && (next.origin !== this.target.url.origin || seen.has(next.href))) next = undefined;
    }
    return out;
  }

  private async get(url: URL, what: string): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.auth) headers.authorization = `Basic ${Buffer.from(this.auth).toString('base64')}`;
    try {
      return await this.fetchFn(url, {
        headers,
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (error as Error).name === 'TimeoutError'
          ? `no answer within ${this.timeoutMs} ms`
          : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new UnavailableError(
        `The registry at ${this.target.host} is unreachable (${why}) while reading ${what}`,
        'REGISTRY_UNAVAILABLE',
      );
    }
  }

  private upstreamError(status: number, what: string, text: string): HttpError {
    if (status === 401 || status === 403)
      return new UpstreamError(
        `The registry at ${this.target.host} refused ${this.auth ? 'the credentials in the registry-auth secret' : 'anonymous access (set the registry-auth secret to user:password)'} (HTTP ${status}) reading ${what}`,
        'REGISTRY_ERROR',
      );
    const reason = /"message"\s*:\s*"([^"]{1,200})"/.exec(text)?.[1];
    return new UpstreamError(
      `The registry at ${this.target.host} answered HTTP ${status} reading ${what}${reason ? `: ${reason}` : ''}`,
      'REGISTRY_ERROR',
    );
  }
}

/** The `rel="next"` target of a Link header, resolved against the page that sent it. */
export function nextLink(header: string | null, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /\brel\s*=\s*"?next"?/i.test(m[2]!)) {
      try {
        return new URL(m[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
