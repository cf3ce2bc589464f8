import {
  NovitaApiError,
  NOVITA_KEY_SECRET,
  NovitaKeyMissingError,
  type NovitaCloud,
  type NovitaCreate,
  type NovitaInstance,
  type NovitaPortMapping,
  type NovitaProduct,
  type NovitaTemplate,
} from '../ports/novita-cloud.js';
import type { Secrets } from '../ports/secrets.js';

export interface HttpNovitaOptions {
  baseUrl: string;
  /** Reads the key through the Secrets port on each call, so a rotated key takes effect. */
  apiKey: () => Promise<string | undefined>;
  secretName: string;
  timeoutMs: number;
}

type Json = Record<string, unknown>;

const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);

export function parseProduct(raw: unknown): NovitaProduct | undefined {
  const p = obj(raw);
  const id = str(p?.id);
  const name = str(p?.name);
  if (!p || !id || !name) return undefined;
  const regions = Array.isArray(p.regions) ? p.regions.map(str).filter((r): r is string => !!r) : [];
  return {
    id,
    name,
    availableDeploy: p.availableDeploy === true || p.availableDeploy === 'true',
    regions,
    price: num(p.price) ?? Number.POSITIVE_INFINITY,
    ...(num(p.spotPrice) !== undefined ? { spotPrice: num(p.spotPrice) } : {}),
    ...(num(p.minRootFS) !== undefined ? { minRootFS: num(p.minRootFS) } : {}),
    ...(num(p.maxRootFS) !== undefined ? { maxRootFS: num(p.maxRootFS) } : {}),
  };
}

/** Template ports come as `[{type: "http", ports: [8888]}]` or already as create's string. */
function templatePorts(v: unknown): string | undefined {
  if (typeof v === 'string') return v || undefined;
  if (!Array.isArray(v)) return undefined;
  const parts: string[] = [];
  for (const entry of v) {
    const e = obj(entry);
    const type = str(e?.type) ?? 'tcp';
    const ports = Array.isArray(e?.ports) ? e.ports : e?.port !== undefined ? [e.port] : [];
    for (const port of ports) if (num(port) !== undefined) parts.push(`${num(port)}/${type}`);
  }
  return parts.length ? parts.join(', ') : undefined;
}

export function parseTemplate(raw: unknown): NovitaTemplate | undefined {
  const outer = obj(raw);
  const t = obj(outer?.template) ?? outer;
  const id = str(t?.Id) ?? str(t?.id);
  const imageUrl = str(t?.image) ?? str(t?.imageUrl);
  if (!t || !id || !imageUrl) return undefined;
  const envs = Array.isArray(t.envs)
    ? t.envs
        .map(obj)
        .filter((e): e is Json => !!e && typeof e.key === 'string')
        .map((e) => ({ key: e.key as string, value: str(e.value) ?? '' }))
    : undefined;
  return {
    id,
    name: str(t.name) ?? id,
    imageUrl,
    ...(str(t.imageAuth) ? { imageAuth: str(t.imageAuth) } : {}),
    ...(templatePorts(t.ports) ? { ports: templatePorts(t.ports) } : {}),
    ...(envs?.length ? { envs } : {}),
    ...(str(t.command) ? { command: str(t.command) } : {}),
  };
}

export function parseInstance(raw: unknown): NovitaInstance | undefined {
  const i = obj(raw);
  const id = str(i?.id);
  if (!i || !id) return undefined;
  const portMappings: NovitaPortMapping[] = Array.isArray(i.portMappings)
    ? i.portMappings
        .map(obj)
        .filter((m): m is Json => !!m && num(m.port) !== undefined)
        .map((m) => ({ port: num(m.port)!, endpoint: str(m.endpoint) ?? '', type: str(m.type) ?? '' }))
    : [];
  const statusError = obj(i.statusError);
  const ssh = obj(i.connectComponentSSH);
  const web = obj(i.connectComponentWebTerminal);
  const jupyter = obj(i.connectComponentJupyter);
  return {
    id,
    name: str(i.name) ?? '',
    status: str(i.status) ?? '',
    ...(str(i.clusterId) ? { clusterId: str(i.clusterId) } : {}),
    ...(str(i.productId) ? { productId: str(i.productId) } : {}),
    ...(str(i.productName) ? { productName: str(i.productName) } : {}),
    ...(str(i.billingMode) ? { billingMode: str(i.billingMode) } : {}),
    ...(statusError && (str(statusError.state) || str(statusError.message))
      ? { statusError: { state: str(statusError.state), message: str(statusError.message) } }
      : {}),
    portMappings,
    // Only the command and URLs: the SSH password and Jupyter token stay out of our records.
    ...(ssh ? { connectComponentSSH: { command: str(ssh.command), user: str(ssh.user) } } : {}),
    ...(web ? { connectComponentWebTerminal: { url: str(web.url) } } : {}),
    ...(jupyter ? { connectComponentJupyter: { url: str(jupyter.url) } } : {}),
    ...(str(i.spotStatus) ? { spotStatus: str(i.spotStatus) } : {}),
    ...(str(i.spotReclaimTime) !== undefined ? { spotReclaimTime: str(i.spotReclaimTime) } : {}),
  };
}

/**
 * The HTTP adapter for the real Novita API (`Authorization: Bearer <key>`), over Node's fetch (undici
 * inside the runtime: nothing added to the bundle).
 */
export class HttpNovitaCloud implements NovitaCloud {
  private readonly base: string;

  constructor(private readonly options: HttpNovitaOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown, notFoundOk = false): Promise<Json | undefined> {
    const key = await this.options.apiKey();
    if (!key) throw new NovitaKeyMissingError(this.options.secretName);
    let res: Response;
    let text: string;
    try {
      // One deadline for the answer and its body.
      const signal = AbortSignal.timeout(this.options.timeoutMs);
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal,
      });
      text = await res.text().catch(() => '');
    } catch (error) {
      // fetch's messages name the host at most, never the headers.
      throw new NovitaApiError(0, `Novita API unreachable: ${(error as Error).message}`);
    }
    let json: Json | undefined;
    try {
      json = text ? obj(JSON.parse(text)) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 200 && res.status < 300) return json ?? {};
    if (notFoundOk && res.status === 404) return undefined;
    const code = str(json?.reason) ?? str(json?.code) ?? str(obj(json?.error)?.code);
    const message = str(json?.message) ?? str(obj(json?.error)?.message) ?? `HTTP ${res.status}`;
    const retryAfter = num(res.headers.get('retry-after') ?? undefined);
    throw new NovitaApiError(res.status, `Novita API ${method} ${path.split('?')[0]}: ${message}`, code, retryAfter);
  }

  async listProducts(filter: { productName?: string; gpuNum?: number }): Promise<NovitaProduct[]> {
    const q = new URLSearchParams();
    if (filter.productName) q.set('productName', filter.productName);
    if (filter.gpuNum) q.set('gpuNum', String(filter.gpuNum));
    const json = await this.call('GET', `/products?${q}`);
    const data = Array.isArray(json?.data) ? json.data : [];
    return data.map(parseProduct).filter((p): p is NovitaProduct => !!p);
  }

  async getTemplate(templateId: string): Promise<NovitaTemplate | undefined> {
    try {
      const json = await this.call('GET', `/template?templateId=${encodeURIComponent(templateId)}`, undefined, true);
      return json ? parseTemplate(json) : undefined;
    } catch (error) {
      // Novita answers an unknown template id with 400 on some deployments.
      if (error instanceof NovitaApiError && error.status === 400 && !error.code?.includes('RESOURCE')) return undefined;
      throw error;
    }
  }

  async createInstance(create: NovitaCreate): Promise<{ id: string }> {
    const json = await this.call('POST', '/gpu/instance/create', create);
    const id = str(json?.id);
    if (!id) throw new NovitaApiError(502, 'Novita API create answered without an instance id');
    return { id };
  }

  async getInstance(instanceId: string): Promise<NovitaInstance | undefined> {
    const json = await this.call('GET', `/gpu/instance?instanceId=${encodeURIComponent(instanceId)}`, undefined, true);
    return json ? parseInstance(obj(json.instance) ?? json) : undefined;
  }

  async listInstances(page: { pageNum: number; pageSize: number }): Promise<NovitaInstance[]> {
    const json = await this.call('GET', `/gpu/instances?pageSize=${page.pageSize}&pageNum=${page.pageNum}`);
    const list = Array.isArray(json?.instances) ? json.instances : [];
    return list.map(parseInstance).filter((i): i is NovitaInstance => !!i);
  }

  async migrateInstance(instanceId: string): Promise<{ id: string }> {
    const json = await this.call('POST', '/gpu/instance/migrate', { instanceId });
    return { id: str(json?.id) ?? str(json?.instanceId) ?? instanceId };
  }

  async deleteInstance(instanceId: string): Promise<void> {
    await this.call('POST', '/gpu/instance/delete', { instanceId });
  }

  async ping(): Promise<void> {
    await this.call('GET', '/gpu/instances?pageSize=1&pageNum=1');
  }
}

const KEY_CACHE_MS = 60_000;

/**
 * The Novita client of a context: the HTTP adapter at NOVITA_BASE_URL, reading the key through
 * the Secrets port at most once a minute, so a rotation takes effect without a restart.
 */
export function createNovitaCloud(
  config: { NOVITA_BASE_URL: string; NOVITA_TIMEOUT_MS: number },
  secrets: Secrets,
  now: () => number,
): NovitaCloud {
  let cached: { value: string | undefined; at: number } | undefined;
  return new HttpNovitaCloud({
    baseUrl: config.NOVITA_BASE_URL,
    apiKey: async () => {
      if (!cached || now() - cached.at > KEY_CACHE_MS || !cached.value) {
        cached = { value: await secrets.get(NOVITA_KEY_SECRET), at: now() };
      }
      return cached.value;
    },
    secretName: NOVITA_KEY_SECRET,
    timeoutMs: config.NOVITA_TIMEOUT_MS,
  });
}
