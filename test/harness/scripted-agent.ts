/**
 * The one scripted node agent of the suites: it speaks the agent protocol over HTTP exactly as the
 * real agent does (register, heartbeat, long-poll commands, post results, ack, events), keeps the
 * containers it was told to run in a table instead of an engine, and runs `task.run` the way the
 * real agent does (the model's server if one runs, else start one; progress events; `task.finished`
 * with the image as a base64 file). Tasks finish on their own after `runMs`, or when the test says
 * so (`finish`). The real agent + Podman suites replace it end to end.
 */
import { randomBytes } from 'node:crypto';
import { modelInstanceId } from '../../functions/cluster/catalogue.js';
import {
  LABELS,
  type ContainerState,
  type Gpu,
  type NodeMetrics,
  type RegisterRequest,
  type RegisterResponse,
} from '../../protocol/messages.js';
import { commandEnvelope, HOST_EXEC, type CommandEnvelope } from '../../protocol/commands.js';
import { scanNetwork, type ScanOptions } from '../../agent/network-scan.js';
import { ExecDisabledError } from '../../agent/command-handlers.js';
import { runHostCommand } from '../../agent/host-exec.js';

export interface HttpAnswer<T = unknown> {
  status: number;
  body: T;
}

/** One HTTP call; a body that is not JSON is kept as text. */
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
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T };
}

/** Retries an assertion until it passes or the time is up. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<T> {
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

/** A valid 1x1 PNG. */
export const PNG_1x1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

export interface SimContainer extends ContainerState {
  /** Percentages the next heartbeat reports. */
  cpu: number;
  mem: number;
}

export interface AgentOptions {
  cpuCount?: number;
  cpuModel?: string;
  memoryMb?: number;
  diskGb?: number;
  arch?: string;
  os?: string;
  /** GPUs registered and reported by the heartbeats (none by default). */
  gpus?: number;
  gpuName?: string;
  gpuMemoryMiB?: number;
  jetson?: RegisterRequest['jetson'];
  address?: string;
  labels?: Record<string, string>;
  /** Registered as the `max-concurrency` label (task slots). */
  maxConcurrency?: number;
  /** Model servers running at start (reported by the first heartbeat). */
  models?: string[];
  /** Finish tasks on their own after this long; undefined: hold them until `finish()`. */
  runMs?: number;
  /** The background loop's heartbeat period (300 ms by default). */
  heartbeatMs?: number;
  /** Long-poll seconds per command poll of the background loop; 0 polls and sleeps briefly. */
  pollWaitSeconds?: number;
  /** Answer container.start with a failure. */
  failStarts?: boolean;
  /** Answer this many container.remove commands with a failure, the container kept. */
  failRemoves?: number;
  /** network.scan runs the agent's real scanner with these settings. */
  networkScan?: ScanOptions;
  /** host.exec runs the command for real (the agent's own runner), as an agent started with --allow-exec. */
  allowExec?: boolean;
  /** Registered driver (container when absent). */
  driver?: RegisterRequest['driver'];
}

/** A GPU worker of the Cluster Manager: one RTX 4090, 16 cores, 64 GiB, one task slot. */
export const GPU_WORKER: AgentOptions = {
  cpuCount: 16,
  cpuModel: 'AMD Ryzen 9 7950X',
  memoryMb: 65_536,
  diskGb: 500,
  arch: 'x86_64',
  os: 'Ubuntu 22.04',
  gpus: 1,
  gpuName: 'NVIDIA RTX 4090',
  gpuMemoryMiB: 24_576,
  address: '10.0.0.9',
  maxConcurrency: 1,
};

export type ScriptedResult = {
  status: 'succeeded' | 'failed';
  output: Record<string, unknown>;
  error?: string;
};

interface RunningTask {
  taskId: string;
  model: string;
  commandId: string;
  timer?: NodeJS.Timeout;
}

let nextPort = 32000;

export class ScriptedAgent {
  nodeId = '';
  token = '';
  registration?: RegisterResponse;
  /** Containers started by container.start (model servers excepted), by instance id. */
  readonly containers = new Map<string, SimContainer>();
  /** Model id → instance id of the server container serving it. */
  readonly servers = new Map<string, string>();
  /** Tasks running, by task id. */
  readonly running = new Map<string, RunningTask>();
  /** Every command received, in arrival order. */
  readonly seen: CommandEnvelope[] = [];
  /** task.run commands in arrival order; `load`: the model had no server here, so one started. */
  readonly runs: { taskId: string; model: string; load: boolean; at: number }[] = [];
  readonly cancels: string[] = [];
  /** Runs whose cancel came first (as agent/tasks.ts): they end cancelled when they arrive. */
  private readonly cancelledRuns = new Set<string>();
  /** Server starts caused by a task for a model not being served (the cost a switch pays). */
  loads = 0;
  finished = 0;
  /** Heartbeat metrics over the defaults. */
  metrics: Partial<NodeMetrics> = {};
  /** What the next disk.audit reports as the engine's root. */
  engineRoot = '/var/lib/docker';
  private removesFailed = 0;
  private loop?: Promise<void>;
  private beating = true;
  private stopped = false;

  constructor(
    readonly base: string,
    readonly name: string,
    readonly options: AgentOptions = {},
  ) {
    for (const m of options.models ?? []) this.servers.set(m, `preloaded-${m}`);
  }

  get auth() {
    return { authorization: `Bearer ${this.token}` };
  }

  private gpuMetrics(): Gpu[] {
    const total = this.options.gpuMemoryMiB ?? 80_000;
    const used = 1024 + 4096 * this.servers.size;
    return Array.from({ length: this.options.gpus ?? 0 }, (_, index) => ({
      index,
      uuid: `GPU-${this.name}-${index}`,
      name: this.options.gpuName ?? 'NVIDIA H100',
      utilizationGpu: this.running.size ? 90 : 5,
      utilizationMemory: 10,
      memoryTotalMiB: total,
      memoryUsedMiB: used,
      memoryFreeMiB: total - used,
      temperatureC: 40 + index,
      powerDrawW: 100,
      powerLimitW: 450,
      driverVersion: '550.54',
    }));
  }

  registerBody(): RegisterRequest {
    const o = this.options;
    return {
      nodeName: this.name,
      hostname: `${this.name}.local`,
      addresses: [o.address ?? '10.0.0.7'],
      arch: o.arch ?? 'arm64',
      os: o.os ?? 'linux',
      cpuCount: o.cpuCount ?? 8,
      ...(o.cpuModel ? { cpuModel: o.cpuModel } : {}),
      memoryMb: o.memoryMb ?? 16_384,
      diskGb: o.diskGb ?? 100,
      gpus: this.gpuMetrics(),
      jetson: o.jetson ?? null,
      labels: {
        ...(o.maxConcurrency !== undefined ? { 'max-concurrency': String(o.maxConcurrency) } : {}),
        ...(o.labels ?? {}),
      },
      cluster: 'vision',
      agentVersion: 'test',
      ...(o.driver ? { driver: o.driver } : {}),
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
    if (res.status !== 200)
      throw new Error(`register ${this.name}: ${res.status} ${JSON.stringify(res.body)}`);
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
    for (const [model, instanceId] of this.servers)
      containers.push({
        containerId: `c-${instanceId}`,
        name: instanceId,
        instanceId,
        imageId: 'sdxl-trt',
        kind: 'model',
        state: 'running',
        ports: [{ containerPort: 8080, hostPort: 40000, protocol: 'tcp' }],
        labels: { [LABELS.model]: model, [LABELS.managed]: 'true' },
      });
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
          diskTotalGb: this.options.diskGb ?? 100,
          gpus: this.gpuMetrics(),
          ...this.metrics,
        },
        containers,
        loadedModels: [...this.servers.keys()],
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

  /** Task events, as the agent's task runner sends them: a refusal is the test's failure. */
  private async taskEvents(events: unknown[]): Promise<void> {
    const res = await this.events(events);
    if (res.status !== 200) throw new Error(`events: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Ends a running task the way the real agent reports it. */
  async finish(taskId: string, status: 'completed' | 'failed' = 'completed'): Promise<void> {
    const r = this.running.get(taskId);
    if (!r) throw new Error(`${this.name} is not running ${taskId}`);
    this.running.delete(taskId);
    clearTimeout(r.timer);
    const at = new Date().toISOString();
    await this.taskEvents([
      { type: 'task.progress', taskId, progress: 100, at },
      status === 'completed'
        ? {
            type: 'task.finished',
            taskId,
            status,
            result: { seed: 42, generation_time: 0.5 },
            files: [{ name: 'image_0.png', contentType: 'image/png', base64: PNG_1x1.toString('base64') }],
            runCommandId: r.commandId,
            at,
          }
        : {
            type: 'task.finished',
            taskId,
            status,
            files: [],
            error: 'model server answered 500',
            runCommandId: r.commandId,
            at,
          },
    ]);
    this.finished++;
  }

  runsOf(taskId: string): number {
    return this.runs.filter((r) => r.taskId === taskId).length;
  }

  /** What a real engine would do with the command; returns the result to report. */
  execute(env: CommandEnvelope): ScriptedResult | Promise<ScriptedResult> {
    const c = env.command;
    const ok = (output: Record<string, unknown> = {}): ScriptedResult => ({ status: 'succeeded', output });
    switch (c.type) {
      case 'container.start': {
        if (this.options.failStarts) return { status: 'failed', output: {}, error: 'image not found' };
        const model = c.spec.labels[LABELS.model];
        if (model) {
          this.servers.set(model, c.spec.instanceId);
          return ok({ containerId: `c-${c.spec.instanceId}`, state: 'running' });
        }
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
        return ok({ containerId, ports });
      }
      case 'container.stop': {
        const ct = this.containers.get(c.instanceId);
        if (ct) Object.assign(ct, { state: 'exited', exitCode: 0 });
        return ok();
      }
      case 'container.remove': {
        if ((this.options.failRemoves ?? 0) > this.removesFailed) {
          this.removesFailed++;
          return { status: 'failed', output: {}, error: 'engine busy' };
        }
        let found = this.containers.delete(c.instanceId);
        for (const [m, id] of this.servers)
          if (id === c.instanceId || modelInstanceId(this.nodeId, m) === c.instanceId) {
            this.servers.delete(m);
            found = true;
          }
        return ok({ found, removed: found, instanceId: c.instanceId });
      }
      case 'container.update':
        return ok({ recreated: false });
      case 'container.logs': {
        const ct = this.containers.get(c.instanceId);
        if (!ct) return { status: 'failed', output: {}, error: `no container for instance ${c.instanceId}` };
        return ok({ logs: `${ct.name} line 1\n${ct.name} line 2\n`, truncated: false });
      }
      case 'container.restart': {
        const ct = this.containers.get(c.instanceId);
        if (!ct) return { status: 'failed', output: {}, error: `no container for instance ${c.instanceId}` };
        Object.assign(ct, { state: 'running', exitCode: null, startedAt: new Date().toISOString() });
        return ok({ containerId: ct.containerId, ports: ct.ports });
      }
      case 'task.run':
        return this.runTask(env.commandId, c);
      case 'task.cancel':
        return this.cancelTask(c.taskId, c.runCommandId);
      case 'network.scan':
        return scanNetwork(c.subnet, c.ports, this.options.networkScan).then(
          (output) => ok({ ...output }),
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
        return ok({
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
        });
      }
      case 'disk.audit':
        return ok({
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
        });
      case 'host.exec': {
        if (!this.options.allowExec) {
          const refused = new ExecDisabledError();
          return { status: 'failed', output: { errorType: refused.name }, error: refused.message };
        }
        return runHostCommand(c.command, {
          timeoutMs: c.timeoutSeconds * 1000,
          maxOutputBytes: HOST_EXEC.maxOutputBytes,
        }).then((output) => ok({ ...output }));
      }
      default:
        return { status: 'failed', output: {}, error: `unsupported ${c.type}` };
    }
  }

  private async runTask(
    commandId: string,
    c: Extract<CommandEnvelope['command'], { type: 'task.run' }>,
  ): Promise<ScriptedResult> {
    const ok = (alreadyRunning: boolean): ScriptedResult => ({
      status: 'succeeded',
      output: { taskId: c.taskId, accepted: true, alreadyRunning },
    });
    if (this.running.has(c.taskId)) return ok(true);
    if (this.cancelledRuns.delete(commandId)) {
      await this.taskEvents([
        {
          type: 'task.finished',
          taskId: c.taskId,
          status: 'cancelled',
          files: [],
          error: 'cancelled',
          runCommandId: commandId,
          at: new Date().toISOString(),
        },
      ]);
      return ok(false);
    }
    // The real agent: this model's server if one runs, else start one.
    const loaded = this.servers.has(c.model);
    if (!loaded) {
      this.servers.set(c.model, c.server.instanceId);
      this.loads++;
    }
    this.runs.push({ taskId: c.taskId, model: c.model, load: !loaded, at: Date.now() });
    const r: RunningTask = { taskId: c.taskId, model: c.model, commandId };
    this.running.set(c.taskId, r);
    const at = new Date().toISOString();
    await this.taskEvents([
      { type: 'task.progress', taskId: c.taskId, progress: 0, at },
      { type: 'task.progress', taskId: c.taskId, progress: 30, at },
    ]);
    if (this.options.runMs !== undefined) {
      r.timer = setTimeout(() => void this.finish(c.taskId).catch(() => undefined), this.options.runMs);
    }
    return ok(false);
  }

  private async cancelTask(taskId: string, runCommandId?: string): Promise<ScriptedResult> {
    this.cancels.push(taskId);
    let r = this.running.get(taskId);
    if (r && runCommandId !== undefined && r.commandId !== runCommandId) r = undefined;
    if (!r && runCommandId !== undefined) this.cancelledRuns.add(runCommandId);
    if (r) {
      this.running.delete(taskId);
      clearTimeout(r.timer);
      await this.taskEvents([
        {
          type: 'task.finished',
          taskId,
          status: 'cancelled',
          files: [],
          error: 'cancelled',
          runCommandId: r.commandId,
          at: new Date().toISOString(),
        },
      ]);
    }
    return { status: 'succeeded', output: { taskId, cancelled: !!r } };
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

  /** Heartbeats and serves commands in the background, as the real agent's main loop does. */
  start(heartbeatMs?: number): void {
    const wait = this.options.pollWaitSeconds ?? 0;
    let last = 0;
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          if (this.beating && Date.now() - last >= (heartbeatMs ?? this.options.heartbeatMs ?? 300)) {
            last = Date.now();
            await this.heartbeat();
          }
          if (this.beating) await this.serveOnce(wait);
        } catch {
          // The runtime may be stopping under us.
        }
        if (!wait || !this.beating) await new Promise((r) => setTimeout(r, 50));
      }
    })();
  }

  /** Goes silent (a node that lost power): no heartbeats, no command polling. */
  silence(): void {
    this.beating = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.running.values()) clearTimeout(r.timer);
    await this.loop;
  }
}
