/**
 * A GPU node agent simulated over HTTP: it registers, heartbeats (GPU metrics, model server
 * containers, loaded models), long-polls its commands, reports results and acknowledges them,
 * and runs `task.run` the way the real agent does (reuse the server of the model or start one;
 * progress events; `task.finished` with the image as a base64 file). Tasks finish on their own
 * after `runMs`, or when the test says so (`hold`). The real agent + Podman model server
 * replaces it end to end.
 */
import { modelInstanceId } from '../../../functions/cluster/catalogue.js';
import { LABELS, type ContainerState } from '../../../protocol/messages.js';
import { commandEnvelope, type CommandEnvelope } from '../../../protocol/commands.js';

/** A valid 1x1 PNG. */
export const PNG_1x1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

export interface SimOptions {
  gpuName?: string;
  gpuMemoryMiB?: number;
  maxConcurrency?: number;
  /** Model servers running at start (reported by the first heartbeat). */
  models?: string[];
  /** Finish tasks on their own after this long; undefined: hold them until `finish()`. */
  runMs?: number;
  heartbeatMs?: number;
  /** Long-poll seconds per command poll; 0 polls and sleeps briefly. */
  pollWaitSeconds?: number;
  labels?: Record<string, string>;
}

interface Running {
  taskId: string;
  model: string;
  commandId: string;
  timer?: NodeJS.Timeout;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
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

export class SimAgent {
  nodeId = '';
  token = '';
  /** Model id → instance id of the server container serving it. */
  readonly servers = new Map<string, string>();
  readonly running = new Map<string, Running>();
  readonly commands: CommandEnvelope[] = [];
  /** task.run commands in arrival order; `load`: the model had no server here, so one started. */
  readonly runs: { taskId: string; model: string; load: boolean; at: number }[] = [];
  readonly cancels: string[] = [];
  /** Server starts caused by a task for a model not being served (the cost a switch pays). */
  loads = 0;
  finished = 0;
  private loop?: Promise<void>;
  private beating = true;
  private stopped = false;

  constructor(
    readonly base: string,
    readonly name: string,
    readonly options: SimOptions = {},
  ) {
    for (const m of options.models ?? []) this.servers.set(m, `preloaded-${m}`);
  }

  get auth() {
    return { authorization: `Bearer ${this.token}` };
  }

  async register(): Promise<void> {
    const mem = this.options.gpuMemoryMiB ?? 24_576;
    const res = await call(this.base, 'POST', '/agent/register', {
      nodeName: this.name,
      hostname: `${this.name}.local`,
      addresses: ['10.0.0.9'],
      arch: 'x86_64',
      os: 'Ubuntu 22.04',
      cpuCount: 16,
      cpuModel: 'AMD Ryzen 9 7950X',
      memoryMb: 65_536,
      diskGb: 500,
      gpus: [this.gpu(mem, 0)],
      labels: {
        [`max-concurrency`]: String(this.options.maxConcurrency ?? 1),
        ...(this.options.labels ?? {}),
      },
      cluster: 'vision',
      agentVersion: 'sim',
    });
    if (res.status !== 200)
      throw new Error(`register ${this.name}: ${res.status} ${JSON.stringify(res.body)}`);
    this.nodeId = res.body.nodeId;
    this.token = res.body.token;
  }

  private gpu(memoryTotalMiB: number, used: number) {
    return {
      index: 0,
      uuid: `GPU-${this.name}`,
      name: this.options.gpuName ?? 'NVIDIA RTX 4090',
      utilizationGpu: this.running.size ? 90 : 5,
      utilizationMemory: 10,
      memoryTotalMiB,
      memoryUsedMiB: used,
      memoryFreeMiB: memoryTotalMiB - used,
      temperatureC: 50,
      powerDrawW: 100,
      powerLimitW: 450,
      driverVersion: '550.54',
    };
  }

  async heartbeat(): Promise<number> {
    const containers: ContainerState[] = [...this.servers.entries()].map(([model, instanceId]) => ({
      containerId: `c-${instanceId}`,
      name: instanceId,
      instanceId,
      imageId: 'sdxl-trt',
      kind: 'model',
      state: 'running',
      ports: [{ containerPort: 8080, hostPort: 40000, protocol: 'tcp' }],
      labels: { [LABELS.model]: model, [LABELS.managed]: 'true' },
    }));
    const mem = this.options.gpuMemoryMiB ?? 24_576;
    const res = await call(
      this.base,
      'POST',
      '/agent/heartbeat',
      {
        metrics: {
          cpuPercent: 20,
          memoryUsedMb: 8192,
          memoryTotalMb: 65_536,
          diskUsedGb: 100,
          diskTotalGb: 500,
          gpus: [this.gpu(mem, 1024 + 4096 * this.servers.size)],
        },
        containers,
        loadedModels: [...this.servers.keys()],
      },
      this.auth,
    );
    return res.status;
  }

  async events(events: unknown[]): Promise<void> {
    const res = await call(this.base, 'POST', '/agent/events', { events }, this.auth);
    if (res.status !== 200) throw new Error(`events: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Ends a held task the way the real agent reports it. */
  async finish(taskId: string, status: 'completed' | 'failed' = 'completed'): Promise<void> {
    const r = this.running.get(taskId);
    if (!r) throw new Error(`${this.name} is not running ${taskId}`);
    this.running.delete(taskId);
    clearTimeout(r.timer);
    const at = new Date().toISOString();
    await this.events([
      { type: 'task.progress', taskId, progress: 100, at },
      status === 'completed'
        ? {
            type: 'task.finished',
            taskId,
            status,
            result: { seed: 42, generation_time: 0.5 },
            files: [{ name: 'image_0.png', contentType: 'image/png', base64: PNG_1x1.toString('base64') }],
            at,
          }
        : { type: 'task.finished', taskId, status, files: [], error: 'model server answered 500', at },
    ]);
    this.finished++;
  }

  private async execute(env: CommandEnvelope): Promise<Record<string, unknown>> {
    const c = env.command;
    switch (c.type) {
      case 'task.run': {
        if (this.running.has(c.taskId)) return { taskId: c.taskId, accepted: true, alreadyRunning: true };
        // The real agent: this model's server if one runs, else start one.
        const loaded = this.servers.has(c.model);
        if (!loaded) {
          this.servers.set(c.model, c.server.instanceId);
          this.loads++;
        }
        this.runs.push({ taskId: c.taskId, model: c.model, load: !loaded, at: Date.now() });
        const r: Running = { taskId: c.taskId, model: c.model, commandId: env.commandId };
        this.running.set(c.taskId, r);
        const at = new Date().toISOString();
        await this.events([
          { type: 'task.progress', taskId: c.taskId, progress: 0, at },
          { type: 'task.progress', taskId: c.taskId, progress: 30, at },
        ]);
        if (this.options.runMs !== undefined) {
          r.timer = setTimeout(() => void this.finish(c.taskId).catch(() => undefined), this.options.runMs);
        }
        return { taskId: c.taskId, accepted: true, alreadyRunning: false };
      }
      case 'task.cancel': {
        this.cancels.push(c.taskId);
        const r = this.running.get(c.taskId);
        if (r) {
          this.running.delete(c.taskId);
          clearTimeout(r.timer);
          await this.events([
            {
              type: 'task.finished',
              taskId: c.taskId,
              status: 'cancelled',
              files: [],
              error: 'cancelled',
              at: new Date().toISOString(),
            },
          ]);
        }
        return { taskId: c.taskId, cancelled: !!r };
      }
      case 'container.start': {
        const model = c.spec.labels[LABELS.model];
        if (model) this.servers.set(model, c.spec.instanceId);
        return { containerId: `c-${c.spec.instanceId}`, state: 'running' };
      }
      case 'container.remove': {
        for (const [m, id] of this.servers)
          if (id === c.instanceId || modelInstanceId(this.nodeId, m) === c.instanceId) this.servers.delete(m);
        return { found: true, removed: true, instanceId: c.instanceId };
      }
      default:
        return {};
    }
  }

  async serveOnce(wait: number): Promise<number> {
    const res = await call<{ messages: { receiptHandle: string; body: string }[] }>(
      this.base,
      'GET',
      `/agent/commands?wait=${wait}&max=10`,
      undefined,
      this.auth,
    );
    if (res.status !== 200) throw new Error(`poll: ${res.status}`);
    for (const m of res.body.messages) {
      const env = commandEnvelope.parse(JSON.parse(m.body));
      this.commands.push(env);
      const output = await this.execute(env);
      await call(
        this.base,
        'POST',
        `/agent/commands/${env.commandId}/result`,
        { status: 'succeeded', output },
        this.auth,
      );
    }
    if (res.body.messages.length)
      await call(
        this.base,
        'POST',
        '/agent/commands/ack',
        { receiptHandles: res.body.messages.map((m) => m.receiptHandle) },
        this.auth,
      );
    return res.body.messages.length;
  }

  /** Heartbeats and serves commands in the background, as the real agent's main loop does. */
  start(): void {
    const every = this.options.heartbeatMs ?? 300;
    const wait = this.options.pollWaitSeconds ?? 0;
    let last = 0;
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          if (this.beating && Date.now() - last >= every) {
            last = Date.now();
            await this.heartbeat();
          }
          if (this.beating) await this.serveOnce(wait);
        } catch {
          // The runtime may be stopping under us.
        }
        if (!wait || !this.beating) await new Promise((r) => setTimeout(r, 20));
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

  runsOf(taskId: string): number {
    return this.runs.filter((r) => r.taskId === taskId).length;
  }
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
