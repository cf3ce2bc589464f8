/**
 * A test double of the Novita GPU instance API (v1) as a real HTTP server on 127.0.0.1, in the
 * documented shapes: `{data: [...]}` products, `{template: {Id, ...}}`, create → `{id}`, get with
 * a status progression, `{instances}` pages, migrate, 401 on a bad key, 400
 * INSUFFICIENT_RESOURCE, 429 with Retry-After, delete. Tests steer it through its fields.
 *
 * With `runStartup` set, an instance that reaches `running` runs its create's `command` (with its
 * `envs`) as a local process group, as the instance's container would: a real agent started by a
 * join_fleet startup command joins the control plane. A reclaim or a delete kills that group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeProduct {
  id: string;
  name: string;
  availableDeploy: boolean;
  regions: string[];
  price: number;
  spotPrice: number;
  minRootFS: number;
  maxRootFS: number;
}

export interface FakeInstance {
  id: string;
  name: string;
  status: string;
  productId: string;
  productName: string;
  clusterId: string;
  imageUrl: string;
  billingMode: string;
  rootfsSize: number;
  gpuNum: number;
  /** Statuses still to come, one per status read. */
  ahead: string[];
  statusError?: { state: string; message: string };
  spotStatus: string;
  spotReclaimTime: string;
  migrations: number;
  command?: string;
  envs?: { key: string; value: string }[];
}

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization?: string;
  body?: unknown;
}

export const PRODUCTS: FakeProduct[] = [
  // Two RTX 4090 offers in Hong Kong: the cheaper one must win; a dearer one elsewhere.
  { id: 'prod-4090-hk-a', name: 'RTX 4090 24GB', availableDeploy: true, regions: ['CN-HK-01'], price: 35000, spotPrice: 18000, minRootFS: 10, maxRootFS: 500 },
  { id: 'prod-4090-hk-b', name: 'RTX 4090 24GB', availableDeploy: true, regions: ['CN-HK-01'], price: 29000, spotPrice: 21000, minRootFS: 10, maxRootFS: 500 },
  { id: 'prod-4090-hk-c', name: 'RTX 4090 24GB', availableDeploy: false, regions: ['CN-HK-01'], price: 1000, spotPrice: 500, minRootFS: 10, maxRootFS: 500 },
  { id: 'prod-4090-us', name: 'RTX 4090 24GB', availableDeploy: true, regions: ['US-CA-06'], price: 20000, spotPrice: 10000, minRootFS: 10, maxRootFS: 500 },
  { id: 'prod-a100-hk', name: 'A100 80GB', availableDeploy: true, regions: ['CN-HK-01'], price: 160000, spotPrice: 90000, minRootFS: 10, maxRootFS: 1000 },
  // Deployable by the list, refused by create (INSUFFICIENT_RESOURCE).
  { id: 'prod-h100-soldout', name: 'H100 80GB', availableDeploy: true, regions: ['CN-HK-01'], price: 250000, spotPrice: 150000, minRootFS: 10, maxRootFS: 1000 },
  // Never gets past pulling: the startup timeout's case.
  { id: 'prod-l40-stuck', name: 'L40S 48GB', availableDeploy: true, regions: ['CN-HK-01'], price: 80000, spotPrice: 40000, minRootFS: 10, maxRootFS: 1000 },
];

export const TEMPLATES = [
  {
    Id: 'template-123',
    name: 'pytorch-jupyter',
    image: 'novitalabs/pytorch:2.4-cuda12.4-jupyter',
    ports: [
      { type: 'http', ports: [8888] },
      { type: 'tcp', ports: [22] },
    ],
    envs: [{ key: 'JUPYTER_ENABLE', value: '1' }],
    rootfsSize: 60,
  },
];

export const PROGRESSION = ['toCreate', 'creating', 'pulling', 'running'];

export class FakeNovita {
  url = '';
  readonly instances = new Map<string, FakeInstance>();
  readonly seen: SeenRequest[] = [];
  /** Answer this many next requests with 429 / 503. */
  throttleNext = 0;
  unavailableNext = 0;
  /** Hold migrate answers this long (keeps a migration job in flight). */
  migrateDelayMs = 0;
  /** Answer this many next migrate calls with 503. */
  failMigrateNext = 0;
  /** Run each instance's startup command locally once it runs; `env` is the instance's base environment. */
  runStartup: { env: (instanceId: string) => NodeJS.ProcessEnv } | undefined;
  /** The startup process of each instance (by Novita id) and its output. */
  readonly processes = new Map<string, { child: ChildProcess; output: string[]; home?: string }>();
  private server?: Server;

  /** The key it accepts; change it to play a revoked key. */
  constructor(public apiKey: string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/gpu-instance/openapi/v1`;
    return this;
  }

  /** The instance's container goes away: its processes with it. */
  kill(id: string): void {
    const p = this.processes.get(id);
    if (!p) return;
    this.processes.delete(id);
    const targets = [-p.child.pid!];
    // Processes the agent started in sessions of their own live under the instance's folder.
    if (p.home) {
      for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
        try {
          if (readlinkSync(`/proc/${pid}/cwd`).startsWith(`${p.home}/`)) targets.push(Number(pid));
        } catch {
          // gone, or not ours to read
        }
      }
    }
    for (const target of targets) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  private startup(inst: FakeInstance): void {
    if (!this.runStartup || !inst.command || this.processes.has(inst.id)) return;
    const env: NodeJS.ProcessEnv = { ...this.runStartup.env(inst.id) };
    for (const e of inst.envs ?? []) env[e.key] = e.value;
    const child = spawn('/bin/sh', ['-c', inst.command], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const keep = (chunk: Buffer) => {
      output.push(...chunk.toString().split('\n').filter(Boolean));
      if (output.length > 300) output.splice(0, output.length - 300);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('error', () => undefined);
    this.processes.set(inst.id, { child, output, ...(env['FLEET_AGENT_HOME'] ? { home: env['FLEET_AGENT_HOME'] } : {}) });
  }

  async stop(): Promise<void> {
    for (const id of [...this.processes.keys()]) this.kill(id);
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  /** An instance that exists on the account but was not created through the service. */
  seed(partial: Partial<FakeInstance> & { id: string }): FakeInstance {
    const inst: FakeInstance = {
      name: partial.id,
      status: 'running',
      productId: 'prod-4090-hk-a',
      productName: 'RTX 4090 24GB',
      clusterId: 'CN-HK-01',
      imageUrl: 'busybox',
      billingMode: 'spot',
      rootfsSize: 60,
      gpuNum: 1,
      ahead: [],
      spotStatus: 'running',
      spotReclaimTime: '0',
      migrations: 0,
      ...partial,
    };
    this.instances.set(inst.id, inst);
    return inst;
  }

  /** Novita reclaims a spot instance: it ends exited with a reclaim time. */
  reclaim(id: string): void {
    const inst = this.instances.get(id)!;
    Object.assign(inst, { status: 'exited', ahead: [], spotStatus: 'reclaimed', spotReclaimTime: '1704067200' });
    this.kill(id);
  }

  deletes(): SeenRequest[] {
    return this.seen.filter((r) => r.method === 'POST' && r.path.endsWith('/gpu/instance/delete'));
  }

  creates(): SeenRequest[] {
    return this.seen.filter((r) => r.method === 'POST' && r.path.endsWith('/gpu/instance/create'));
  }

  migrates(): SeenRequest[] {
    return this.seen.filter((r) => r.method === 'POST' && r.path.endsWith('/gpu/instance/migrate'));
  }

  private view(i: FakeInstance) {
    const host = `${i.id}.novita.test`;
    const running = i.status === 'running';
    return {
      id: i.id,
      name: i.name,
      clusterId: i.clusterId,
      clusterName: i.clusterId,
      imageUrl: i.imageUrl,
      status: i.status,
      statusError: i.statusError ?? { state: '', message: '' },
      cpuNum: '16',
      memory: '64',
      gpuNum: String(i.gpuNum),
      portMappings: running
        ? [
            { port: 8888, endpoint: `https://${host}:8888`, type: 'http' },
            { port: 22, endpoint: `ssh://${host}:22`, type: 'tcp' },
          ]
        : [],
      connectComponentSSH: running ? { user: 'root', password: 'not-for-clients', command: `ssh root@${host} -p 22` } : undefined,
      connectComponentWebTerminal: running ? { url: `https://${host}:7681` } : undefined,
      connectComponentJupyter: running ? { url: `https://${host}:8888`, token: 'jupyter-token' } : undefined,
      billingMode: i.billingMode,
      productId: i.productId,
      productName: i.productName,
      rootfsSize: i.rootfsSize,
      spotStatus: i.spotStatus,
      spotReclaimTime: i.spotReclaimTime,
      createdAt: '1704067200',
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      body,
    };
    this.seen.push(seen);
    const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(json));
    };
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return send(401, { code: 401, reason: 'UNAUTHORIZED', message: 'invalid api key', metadata: {} });
    }
    if (this.throttleNext > 0) {
      this.throttleNext--;
      return send(429, { code: 429, reason: 'RATE_LIMIT', message: 'too many requests', metadata: {} }, { 'retry-after': '7' });
    }
    if (this.unavailableNext > 0) {
      this.unavailableNext--;
      return send(503, { code: 503, reason: 'SERVICE_UNAVAILABLE', message: 'try later', metadata: {} });
    }
    const route = `${seen.method} ${url.pathname.replace(/^\/gpu-instance\/openapi\/v1/, '')}`;
    const q = seen.query;
    const b = (body ?? {}) as Record<string, unknown>;
    switch (route) {
      case 'GET /products': {
        const name = (q.productName ?? '').toLowerCase();
        // Novita's filter is fuzzy: "4090" matches "RTX 4090 24GB".
        const data = PRODUCTS.filter((p) => !name || p.name.toLowerCase().includes(name) || name.includes(p.name.toLowerCase().split(' ')[0]!));
        return send(200, { data });
      }
      case 'GET /template': {
        const t = TEMPLATES.find((x) => x.Id === q.templateId);
        return t ? send(200, { template: t }) : send(404, { code: 404, reason: 'NOT_FOUND', message: 'template not found', metadata: {} });
      }
      case 'POST /gpu/instance/create': {
        for (const field of ['productId', 'gpuNum', 'rootfsSize', 'imageUrl']) {
          if (b[field] === undefined) return send(400, { code: 400, reason: 'INVALID_ARGUMENT', message: `${field} is required`, metadata: {} });
        }
        const product = PRODUCTS.find((p) => p.id === b.productId);
        if (!product) return send(400, { code: 400, reason: 'INVALID_ARGUMENT', message: 'unknown product', metadata: {} });
        if (product.id === 'prod-h100-soldout') {
          return send(400, { code: 400, reason: 'INSUFFICIENT_RESOURCE', message: 'no GPU of this product is free', metadata: {} });
        }
        const id = randomBytes(8).toString('hex');
        this.instances.set(id, {
          id,
          name: String(b.name ?? ''),
          status: 'toCreate',
          productId: product.id,
          productName: product.name,
          clusterId: String(b.clusterId ?? ''),
          imageUrl: String(b.imageUrl),
          billingMode: String(b.billingMode ?? 'onDemand'),
          rootfsSize: Number(b.rootfsSize),
          gpuNum: Number(b.gpuNum),
          ahead: product.id === 'prod-l40-stuck' ? ['creating', 'pulling'] : PROGRESSION.slice(1),
          spotStatus: b.billingMode === 'spot' ? 'running' : '',
          spotReclaimTime: '0',
          migrations: 0,
          ...(typeof b.command === 'string' ? { command: b.command } : {}),
          ...(Array.isArray(b.envs) ? { envs: b.envs as { key: string; value: string }[] } : {}),
        });
        return send(200, { id });
      }
      case 'GET /gpu/instance': {
        const inst = this.instances.get(q.instanceId ?? '');
        if (!inst) return send(404, { code: 404, reason: 'NOT_FOUND', message: 'instance not found', metadata: {} });
        const answer = this.view(inst);
        if (inst.ahead.length) inst.status = inst.ahead.shift()!;
        if (inst.status === 'running') this.startup(inst);
        return send(200, answer);
      }
      case 'GET /gpu/instances': {
        const size = Number(q.pageSize ?? 10);
        const num = Number(q.pageNum ?? 1);
        const all = [...this.instances.values()];
        return send(200, { instances: all.slice((num - 1) * size, num * size).map((i) => this.view(i)) });
      }
      case 'POST /gpu/instance/migrate': {
        const inst = this.instances.get(String(b.instanceId ?? ''));
        if (!inst) return send(404, { code: 404, reason: 'NOT_FOUND', message: 'instance not found', metadata: {} });
        if (inst.status !== 'exited') return send(400, { code: 400, reason: 'INVALID_STATE', message: 'only exited instances migrate', metadata: {} });
        if (this.failMigrateNext > 0) {
          this.failMigrateNext--;
          return send(503, { code: 503, reason: 'SERVICE_UNAVAILABLE', message: 'migration backend busy', metadata: {} });
        }
        if (this.migrateDelayMs) await new Promise((r) => setTimeout(r, this.migrateDelayMs));
        // Migrated in place: same id, started again elsewhere.
        Object.assign(inst, { status: 'migrating', ahead: ['pulling', 'running'], spotStatus: 'running', spotReclaimTime: '0' });
        inst.migrations++;
        return send(200, {});
      }
      case 'POST /gpu/instance/delete': {
        const inst = this.instances.get(String(b.instanceId ?? ''));
        if (!inst) return send(404, { code: 404, reason: 'NOT_FOUND', message: 'instance not found', metadata: {} });
        Object.assign(inst, { status: 'removed', ahead: [] });
        this.kill(inst.id);
        return send(200, {});
      }
      default:
        return send(404, { code: 404, reason: 'NOT_FOUND', message: `no route ${route}`, metadata: {} });
    }
  }
}
