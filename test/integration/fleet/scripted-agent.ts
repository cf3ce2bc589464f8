/**
 * A node agent driven by the test: it speaks the agent protocol over HTTP exactly as the real
 * agent does (register, heartbeat, long-poll commands, post results, ack), and keeps the
 * containers it was told to run in a table instead of an engine. The real agent + Podman suite
 * replaces it end to end.
 */
import { randomBytes } from 'node:crypto';
import {
  type ContainerState,
  type NodeMetrics,
  type RegisterRequest,
  type RegisterResponse,
} from '../../../protocol/messages.js';
import { commandEnvelope, HOST_EXEC, type CommandEnvelope } from '../../../protocol/commands.js';
import { scanNetwork, type ScanOptions } from '../../../agent/network-scan.js';
import { ExecDisabledError } from '../../../agent/executor.js';
import { runHostCommand } from '../../../agent/host-exec.js';

export interface HttpAnswer<T = unknown> {
  status: number;
  body: T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export interface SimContainer extends ContainerState {
  /** Percentages the next heartbeat reports. */
  cpu: number;
  mem: number;
}

export interface AgentOptions {
  cpuCount?: number;
  memoryMb?: number;
  gpus?: number;
  jetson?: RegisterRequest['jetson'];
  address?: string;
  /** Answer container.start with a failure. */
  failStarts?: boolean;
  /** Answer this many container.remove commands with a failure, the container kept. */
  failRemoves?: number;
  labels?: Record<string, string>;
  /** network.scan runs the agent's real scanner with these settings. */
  networkScan?: ScanOptions;
  /** host.exec runs the command for real (the agent's own runner), as an agent started with --allow-exec. */
  allowExec?: boolean;
}

export type ScriptedResult = {
  status: 'succeeded' | 'failed';
  output: Record<string, unknown>;
  error?: string;
};

let nextPort = 32000;

export class ScriptedAgent {
  nodeId = '';
  token = '';
  registration?: RegisterResponse;
  readonly containers = new Map<string, SimContainer>();
  readonly seen: CommandEnvelope[] = [];
  /** Heartbeat metrics over the defaults (disk 30 of 100 GB, memory 4 GiB used, no GPUs). */
  metrics: Partial<NodeMetrics> = {};
  /** What the next disk.audit reports as the engine's root. */
  engineRoot = '/var/lib/docker';
  private running = false;
  private removesFailed = 0;
  private loop?: Promise<void>;

  constructor(
    readonly base: string,
    readonly name: string,
    readonly options: AgentOptions = {},
  ) {}

  get auth() {
    return { authorization: `Bearer ${this.token}` };
  }

  registerBody(): RegisterRequest {
    const gpus = Array.from({ length: this.options.gpus ?? 0 }, (_, index) => ({
      index,
      uuid: `GPU-${index}`,
      name: 'NVIDIA H100',
      utilizationGpu: 10,
      utilizationMemory: 5,
      memoryTotalMiB: 80_000,
      memoryUsedMiB: 8_000,
      memoryFreeMiB: 72_000,
      temperatureC: 40 + index,
      powerDrawW: 100,
      powerLimitW: 700,
    }));
    return {
      nodeName: this.name,
      hostname: `${this.name}.local`,
      addresses: [this.options.address ?? '10.0.0.7'],
      arch: 'arm64',
      os: 'linux',
      cpuCount: this.options.cpuCount ?? 8,
      memoryMb: this.options.memoryMb ?? 16_384,
      diskGb: 100,
      gpus,
      jetson: this.options.jetson ?? null,
      labels: this.options.labels ?? {},
      cluster: 'vision',
      agentVersion: 'test',
    };
  }

  /** `headers`: the credential to register with (API key, join token, a node token); none by default. */
  async register(headers: Record<string, string> = {}): Promise<RegisterResponse> {
    const res = await call<RegisterResponse>(
      this.base,
      'POST',
      '/agent/register',
      this.registerBody(),
      headers,
    );
    if (res.status !== 200) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
    this.registration = res.body;
    this.nodeId = res.body.nodeId;
    this.token = res.body.token;
    return res.body;
  }

  async heartbeat(): Promise<HttpAnswer> {
    const containers: ContainerState[] = [...this.containers.values()].map(({ cpu, mem, ...c }) => ({
      ...c,
      stats: { cpuPercent: cpu, memoryUsageMb: 64, memoryLimitMb: 512, memoryPercent: mem },
    }));
    return call(
      this.base,
      'POST',
      '/agent/heartbeat',
      {
        metrics: {
          cpuPercent: 20,
          memoryUsedMb: 4096,
          memoryTotalMb: this.options.memoryMb ?? 16_384,
          diskUsedGb: 30,
          diskTotalGb: 100,
          gpus: [],
          ...this.metrics,
        },
        containers,
        loadedModels: [],
      },
      this.auth,
    );
  }

  async poll(wait = 0, max = 10): Promise<{ receiptHandle: string; envelope: CommandEnvelope }[]> {
    const res = await call<{ messages: { receiptHandle: string; body: string }[] }>(
      this.base,
      'GET',
      `/agent/commands?wait=${wait}&max=${max}`,
      undefined,
      this.auth,
    );
    if (res.status !== 200) throw new Error(`poll: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.messages.map((m) => ({
      receiptHandle: m.receiptHandle,
      envelope: commandEnvelope.parse(JSON.parse(m.body)),
    }));
  }

  async result(
    commandId: string,
    result: { status: 'succeeded' | 'failed'; output?: Record<string, unknown>; error?: string },
  ): Promise<HttpAnswer> {
    return call(this.base, 'POST', `/agent/commands/${commandId}/result`, result, this.auth);
  }

  async ack(receiptHandles: string[]): Promise<HttpAnswer> {
    return call(this.base, 'POST', '/agent/commands/ack', { receiptHandles }, this.auth);
  }

  async events(events: unknown[]): Promise<HttpAnswer> {
    return call(this.base, 'POST', '/agent/events', { events }, this.auth);
  }

  /** What a real engine would do with the command; returns the result to report. */
  execute(env: CommandEnvelope): ScriptedResult | Promise<ScriptedResult> {
    const c = env.command;
    switch (c.type) {
      case 'container.start': {
        if (this.options.failStarts) return { status: 'failed', output: {}, error: 'image not found' };
        const containerId = randomBytes(32).toString('hex');
        const ports = c.spec.ports.map((p) => ({
          containerPort: p.containerPort,
          hostPort: nextPort++,
          protocol: p.protocol,
        }));
        this.containers.set(c.spec.instanceId, {
          containerId,
          name: c.spec.name,
          instanceId: c.spec.instanceId,
          imageId: c.spec.imageId,
          kind: c.spec.kind,
          state: 'running',
          exitCode: null,
          startedAt: new Date().toISOString(),
          ports,
          labels: {},
          cpu: 10,
          mem: 20,
        });
        return { status: 'succeeded', output: { containerId, ports } };
      }
      case 'container.stop': {
        const ct = this.containers.get(c.instanceId);
        if (ct) Object.assign(ct, { state: 'exited', exitCode: 0 });
        return { status: 'succeeded', output: {} };
      }
      case 'container.remove':
        if ((this.options.failRemoves ?? 0) > this.removesFailed) {
          this.removesFailed++;
          return { status: 'failed', output: {}, error: 'engine busy' };
        }
        this.containers.delete(c.instanceId);
        return { status: 'succeeded', output: {} };
      case 'container.update':
        return { status: 'succeeded', output: { recreated: false } };
      case 'container.logs': {
        const ct = this.containers.get(c.instanceId);
        if (!ct) return { status: 'failed', output: {}, error: `no container for instance ${c.instanceId}` };
        return {
          status: 'succeeded',
          output: { logs: `${ct.name} line 1\n${ct.name} line 2\n`, truncated: false },
        };
      }
      case 'container.restart': {
        const ct = this.containers.get(c.instanceId);
        if (!ct) return { status: 'failed', output: {}, error: `no container for instance ${c.instanceId}` };
        Object.assign(ct, { state: 'running', exitCode: null, startedAt: new Date().toISOString() });
        return { status: 'succeeded', output: { containerId: ct.containerId, ports: ct.ports } };
      }
      case 'network.scan':
        return scanNetwork(c.subnet, c.ports, this.options.networkScan).then(
          (output) => ({ status: 'succeeded' as const, output: { ...output } }),
          (error: Error) => ({
            status: 'failed' as const,
            output: { errorType: error.name },
            error: error.message,
          }),
        );
      case 'engine.prune': {
        // As the agent: stopped containers go, running ones stay.
        const removed = [...this.containers.values()].filter((ct) => ct.state === 'exited');
        for (const ct of removed) this.containers.delete(ct.instanceId);
        return {
          status: 'succeeded',
          output: {
            containersRemoved: removed.map((ct) => ({
              containerId: ct.containerId,
              name: ct.name,
              instanceId: ct.instanceId,
              kind: ct.kind,
              state: ct.state,
            })),
            containersSkipped: [],
            imagesDeleted: ['sha256:dangling'],
            spaceReclaimedBytes: 1_000_000,
          },
        };
      }
      case 'disk.audit':
        return {
          status: 'succeeded',
          output: {
            filesystems: [
              {
                role: 'engine_root',
                path: this.engineRoot,
                totalBytes: 100e9,
                usedBytes: 30e9,
                freeBytes: 70e9,
                usedPercent: 30,
              },
              {
                role: 'state_dir',
                path: '/home/op/.fleet-agent',
                error: 'cannot read it from the agent: EACCES',
              },
            ],
            engine: {
              name: 'docker',
              rootDir: this.engineRoot,
              layersSizeBytes: 5e9,
              images: { count: 3, sizeBytes: 5e9, reclaimableBytes: 1e9 },
              containers: { count: this.containers.size, sizeBytes: 1e6, reclaimableBytes: 0 },
              volumes: { count: 0, sizeBytes: 0 },
              buildCacheBytes: 0,
            },
          },
        };
      case 'host.exec': {
        if (!this.options.allowExec) {
          const refused = new ExecDisabledError();
          return { status: 'failed', output: { errorType: refused.name }, error: refused.message };
        }
        return runHostCommand(c.command, {
          timeoutMs: c.timeoutSeconds * 1000,
          maxOutputBytes: HOST_EXEC.maxOutputBytes,
        }).then((output) => ({ status: 'succeeded' as const, output: { ...output } }));
      }
      default:
        return { status: 'failed', output: {}, error: `unsupported ${c.type}` };
    }
  }

  /** One poll → execute → result → ack round; returns the envelopes handled. */
  async serveOnce(wait = 0): Promise<CommandEnvelope[]> {
    const got = await this.poll(wait);
    for (const { envelope } of got) {
      this.seen.push(envelope);
      const r = await this.result(envelope.commandId, await this.execute(envelope));
      if (r.status !== 200) throw new Error(`result: ${r.status} ${JSON.stringify(r.body)}`);
    }
    if (got.length) await this.ack(got.map((g) => g.receiptHandle));
    return got.map((g) => g.envelope);
  }

  /** Serves commands and heartbeats in the background, as the real agent's main loop does. */
  start(heartbeatMs = 300): void {
    this.running = true;
    let lastBeat = 0;
    this.loop = (async () => {
      while (this.running) {
        try {
          if (Date.now() - lastBeat >= heartbeatMs) {
            lastBeat = Date.now();
            await this.heartbeat();
          }
          await this.serveOnce(0);
        } catch {
          // The runtime may be stopping under us.
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** Retries an assertion until it passes or the time is up. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 8000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
