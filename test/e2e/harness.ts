/**
 * Helpers for the end-to-end suites and bench/dispatch.ts: real agent processes (agent/main.ts
 * under `node --import tsx`, or a bundle), HTTP calls, bounded polling, and engine queries by the
 * agent's labels.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import type { AppContext } from '../../functions/core/context.js';
import { LABELS } from '../../protocol/messages.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Bundles the agent to `out` as installs ship it (agent/build.ts): it starts far faster than under tsx. */
export async function buildAgentBundle(out: string): Promise<string> {
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'agent/build.ts', out], { cwd: REPO_ROOT });
  return out;
}

/** A container command that runs until stopped and exits at once on SIGTERM (busybox sh as PID 1 ignores it). */
export const RUN_UNTIL_TERM = ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"];

export const MIB = 1024 * 1024;

// ---------------------------------------------------------------- HTTP

export interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
  body: any;
  text: string;
}

export async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return {
    status: res.status,
    body: parsed,
    text: `${method} ${path} → ${res.status} ${text.slice(0, 2000)}`,
  };
}

// ---------------------------------------------------------------- polling

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Retries `fn` until it returns without throwing; past `timeoutMs` rethrows its last error with
 * what was being waited for.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T> | T,
  timeoutMs = 20_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const message = last instanceof Error ? last.message : String(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${message}`, { cause: last });
    }
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------- engine

export interface EngineContainer {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

/**
 * Managed containers (stopped ones included) on the given nodes, optionally narrowed by more
 * labels (`{ 'fleet.image': ref }`). Only the given node names count: other suites may share the engine.
 */
export async function engineContainers(
  docker: Docker,
  nodeNames: readonly string[],
  labels: Record<string, string> = {},
): Promise<EngineContainer[]> {
  const filters = {
    label: [`${LABELS.managed}=true`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)],
  };
  const list = await docker.listContainers({ all: true, filters: JSON.stringify(filters) });
  return list
    .filter((c) => nodeNames.includes(c.Labels?.[LABELS.node] ?? ''))
    .filter((c) => Object.entries(labels).every(([k, v]) => c.Labels?.[k] === v))
    .map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      state: c.State,
      labels: c.Labels ?? {},
    }));
}

/** Force-removes every managed container of these nodes; returns how many. */
export async function removeNodeContainers(docker: Docker, nodeNames: readonly string[]): Promise<number> {
  let removed = 0;
  for (const c of await engineContainers(docker, nodeNames)) {
    try {
      await docker.getContainer(c.id).remove({ force: true });
      removed++;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }
  return removed;
}

/** Tags `source` as `target` (repo:tag) unless the engine has it already. */
export async function tagImage(docker: Docker, source: string, target: string): Promise<void> {
  const colon = target.lastIndexOf(':');
  const repo = target.slice(0, colon);
  const tag = target.slice(colon + 1);
  await docker.getImage(source).tag({ repo, tag });
  await docker.getImage(target).inspect();
}

/** Removes a tag (the image stays while another name points at it). */
export async function untagImage(docker: Docker, ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ noprune: true })
    .catch(() => undefined);
}

// ---------------------------------------------------------------- agent processes

export interface AgentProcessOptions {
  url: string;
  name: string;
  stateDir: string;
  /** Heartbeat interval; default: the one the control plane asks for. */
  heartbeatSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** How node runs the agent; default `--import tsx agent/main.ts` from the repository root. */
  entry?: string[];
  /** The program that runs node and its first arguments (an emulator); default this process's node. */
  exec?: string[];
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Sees every log line of every run of this agent (`lines` keeps only the last few hundred). */
  onLine?: (line: string) => void;
}

/**
 * One agent as a separate OS process (so it can be SIGKILLed). Its JSON log lines are kept (the
 * last few hundred) for failure messages; `start` resolves once the agent logs "agent running".
 */
export class AgentProcess {
  child: ChildProcess | undefined;
  nodeId = '';
  readonly lines: string[] = [];
  private exited: Promise<unknown> = Promise.resolve();

  constructor(readonly options: AgentProcessOptions) {}

  get name(): string {
    return this.options.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(timeoutMs = 45_000): Promise<string> {
    if (this.alive) throw new Error(`agent ${this.name} is already running (pid ${this.pid})`);
    const o = this.options;
    const args = [
      ...(o.entry ?? ['--import', 'tsx', 'agent/main.ts']),
      '--url',
      o.url,
      '--name',
      o.name,
      '--state-dir',
      o.stateDir,
      ...(o.heartbeatSeconds !== undefined ? ['--heartbeat', String(o.heartbeatSeconds)] : []),
      '--log-level',
      o.logLevel ?? 'info',
    ];
    const [program, ...programArgs] = o.exec ?? [process.execPath];
    const child = spawn(program!, [...programArgs, ...args], {
      cwd: REPO_ROOT,
      env: o.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = once(child, 'exit').catch(() => undefined);
    this.nodeId = '';
    let running: ((nodeId: string) => void) | undefined;
    const ready = new Promise<string>((resolve) => (running = resolve));
    const onLine = (line: string) => {
      if (!line.trim()) return;
      o.onLine?.(line);
      this.lines.push(line);
      if (this.lines.length > 400) this.lines.splice(0, this.lines.length - 400);
      if (line.includes('"agent running"')) {
        try {
          const nodeId = (JSON.parse(line) as { nodeId?: string }).nodeId ?? '';
          this.nodeId = nodeId;
          running?.(nodeId);
        } catch {
          // not JSON; keep waiting
        }
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        partial += chunk.toString();
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) onLine(line);
      });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        ready,
        once(child, 'exit').then(([code, signal]) => {
          throw new Error(`agent ${this.name} exited (${code ?? signal}) before running:\n${this.logTail()}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`agent ${this.name} not running after ${timeoutMs} ms:\n${this.logTail()}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    const exited = this.exited;
    this.child!.kill(signal);
    await exited;
  }

  logTail(lines = 40): string {
    return this.lines.slice(-lines).join('\n');
  }
}

// ---------------------------------------------------------------- engine proxy

/** What the proxy does with a container start request a hook claimed. */
export type StartVerdict =
  /** Pass it on as any other request. */
  | { action: 'forward' }
  /** Never let it reach the engine: the container stays created. The connection is cut. */
  | { action: 'drop' }
  /** Pass it on, hold the engine's answer, call `onAnswer` once it is there (the container runs), then cut the connection. */
  | { action: 'hold'; onAnswer: () => Promise<void> };

/**
 * A pass-through proxy in front of the engine's unix socket, for agents whose DOCKER_HOST points
 * at it. A hook sees every `POST /containers/{id}/start` before it goes on, so a test can stop an
 * agent at an exact point of a start: before the request reaches the engine, or after the engine
 * started the container but before the agent heard so.
 */
export class EngineProxy {
  private server: Server | undefined;
  private hook: ((containerId: string) => Promise<StartVerdict>) | undefined;

  constructor(
    /** Where the proxy listens. */
    readonly path: string,
    /** The engine's socket. */
    readonly target: string,
  ) {}

  get dockerHost(): string {
    return `unix://${this.path}`;
  }

  /** The hook sees start requests until it is replaced or cleared. */
  onStart(hook: ((containerId: string) => Promise<StartVerdict>) | undefined): void {
    this.hook = hook;
  }

  async listen(): Promise<void> {
    const server = createServer((client) => this.connection(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connection(client: Socket): void {
    const upstream = connect(this.target);
    let holding: (() => Promise<void>) | undefined;
    let chain = Promise.resolve();
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', () => undefined);
    upstream.on('error', () => client.destroy());
    upstream.on('data', (data: Buffer) => {
      const onAnswer = holding;
      if (!onAnswer) {
        client.write(data);
        return;
      }
      holding = undefined;
      void onAnswer().finally(cut);
    });
    upstream.on('end', () => client.end());
    // A client gone (killed) must not cancel a request already passed on: the engine answers first.
    client.on('close', () => void chain.then(() => (holding ? undefined : upstream.end())));
    client.on('data', (chunk: Buffer) => {
      client.pause();
      chain = chain
        .then(async () => {
          const hook = this.hook;
          const m = hook && /^POST \S*\/containers\/([^/\s?]+)\/start[\s?]/m.exec(chunk.toString('latin1'));
          const verdict: StartVerdict =
            m && hook ? await hook(decodeURIComponent(m[1]!)) : { action: 'forward' };
          if (verdict.action === 'drop') return cut();
          if (verdict.action === 'hold') holding = verdict.onAnswer;
          upstream.write(chunk);
        })
        .catch(() => cut())
        .finally(() => client.resume());
    });
  }
}

// ---------------------------------------------------------------- control plane under test

/**
 * Which control plane the moto modes of the end-to-end suites run: `local` (default) is the local
 * runtime (every route in this process), `stack` is the synthesized CDK stack run by start:stack
 * (each route in the bundle of its own function, as deployed). FLEET_E2E_RUNTIME=stack selects it.
 */
export const E2E_RUNTIME: 'local' | 'stack' = process.env.FLEET_E2E_RUNTIME === 'stack' ? 'stack' : 'local';

export interface ControlPlane {
  url: string;
  /** The WebSocket API's URL (the stack only; the local runtime serves /ws on `url`). */
  wsUrl?: string;
  /** The same table, queues, bucket and schedules the control plane uses, from this process. */
  ctx: AppContext;
  kind: 'local' | 'stack';
  stop(): Promise<void>;
}

// Settings the template gives the functions: never taken from the suite's environment.
const DEPLOYMENT_KEYS = new Set([
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
  'TABLE_NAME',
  'QUEUE_PREFIX',
  'SCHEDULE_GROUP',
  'SCHEDULE_TARGET_ARN',
  'SCHEDULE_ROLE_ARN',
  'ARTIFACTS_BUCKET',
  'SECRETS_PREFIX',
  'API_AUTH',
  'CORS_ORIGINS',
  'WS_CALLBACK_URL',
  'DOCS_ASSETS_DIR',
]);

/**
 * Starts the control plane a suite runs against. `stack: true` (or FLEET_E2E_RUNTIME=stack for a
 * suite's moto mode) runs the synthesized stack on moto, with API auth off (the suites' agents
 * and calls carry no key) and the suite's settings (NODE_OFFLINE_AFTER_SECONDS...) added to every
 * function's environment; otherwise the local runtime with `env`.
 */
export async function startControlPlane(options: {
  env: Record<string, string | undefined>;
  moto: boolean;
  stack?: boolean;
}): Promise<ControlPlane> {
  const wantsStack = options.stack ?? (options.moto && E2E_RUNTIME === 'stack');
  if (wantsStack && process.env.FLEET_E2E_STACK_OUTPUTS)
    return deployedControlPlane(process.env.FLEET_E2E_STACK_OUTPUTS);
  if (!wantsStack) {
    const { startRuntime } = await import('../../local/runtime.js');
    const rt = await startRuntime({ port: 0, env: options.env });
    return { url: rt.url, ctx: rt.ctx, kind: 'local', stop: () => rt.stop() };
  }
  const [{ startStack }, { configSchema, loadConfig }, { createAwsContext }, { formatDenials }] =
    await Promise.all([
      import('../../local/stack/stack.js'),
      import('../../functions/core/config.js'),
      import('../../functions/core/aws-context.js'),
      import('../../local/stack/iam/checker.js'),
    ]);
  const environment: Record<string, string> = {
    // Nothing leaves the machine: no Bedrock, no Novita cloud.
    AI_ENABLED: 'false',
    NOVITA_BASE_URL: 'http://127.0.0.1:9/v1',
  };
  for (const key of Object.keys(configSchema.shape)) {
    const value = options.env[key];
    if (value !== undefined && !DEPLOYMENT_KEYS.has(key)) environment[key] = value;
  }
  const stack = await startStack({ port: 0, context: { apiAuth: false }, environment, maxConcurrency: 4 });
  try {
    // The events function's environment holds every name the functions use.
    const events =
      Object.values(stack.functions).find((f) => f.options.env.WS_CALLBACK_URL) ??
      Object.values(stack.functions)[0]!;
    // The suite's own context talks to the emulator directly, not through the functions' permission checker.
    const config = loadConfig({
      ...events.options.env,
      AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
      LOG_LEVEL: 'SILENT',
      WS_CALLBACK_URL: undefined,
    });
    const ctx = createAwsContext(config, { mode: 'emulator' });
    // A call a function's role does not allow fails the suite, naming function, action and resource.
    const stop = async () => {
      const denials = stack.checker?.denials() ?? [];
      await stack.stop();
      if (denials.length)
        throw new Error(`AWS calls the functions' roles do not allow:\n${formatDenials(denials)}`);
    };
    return { url: stack.url, wsUrl: stack.wsUrl, ctx, kind: 'stack', stop };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}

/**
 * A deployed stack, from the file `cdk deploy --outputs-file` (or `start:stack --outputs-file`)
 * wrote: the API and WebSocket URLs from its outputs; the context reads the table and bucket of
 * its outputs and the queue prefix, schedule group and SSM prefix of cdk.json (the deploy's
 * settings). The suite's own settings (NODE_OFFLINE_AFTER_SECONDS...) are the deployment's to set.
 */
async function deployedControlPlane(outputsFile: string): Promise<ControlPlane> {
  const [{ readFileSync }, { loadConfig }, { createAwsContext }] = await Promise.all([
    import('node:fs'),
    import('../../functions/core/config.js'),
    import('../../functions/core/aws-context.js'),
  ]);
  const stacks = JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>;
  const outputs = Object.values(stacks)[0];
  if (!outputs?.ApiUrl) throw new Error(`${outputsFile}: no stack with an ApiUrl output`);
  const settings = (
    JSON.parse(readFileSync(`${REPO_ROOT}/cdk.json`, 'utf8')) as { context: Record<string, unknown> }
  ).context;
  const config = loadConfig({
    AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
    AWS_REGION: process.env.AWS_REGION,
    TABLE_NAME: outputs.TableName,
    ARTIFACTS_BUCKET: outputs.ArtifactsBucket,
    QUEUE_PREFIX: String(process.env.FLEET_E2E_QUEUE_PREFIX ?? settings.queuePrefix),
    SCHEDULE_GROUP: String(process.env.FLEET_E2E_SCHEDULE_GROUP ?? settings.scheduleGroup),
    SECRETS_PREFIX: String(process.env.FLEET_E2E_SSM_PREFIX ?? settings.ssmPrefix),
    LOG_LEVEL: 'SILENT',
  });
  return {
    url: outputs.ApiUrl.replace(/\/+$/, ''),
    wsUrl: outputs.WebSocketUrl,
    ctx: createAwsContext(config, { mode: 'emulator' }),
    kind: 'stack',
    stop: async () => undefined,
  };
}
