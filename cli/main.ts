import { Command as Program, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as z from 'zod';
import { cpuLimit, imageRef, memoryLimit } from '../functions/orchestrator/resources.js';
import { jobCreate } from '../functions/training/schemas.js';
import { Client, assertCommands, makeUi } from './client.js';
import { configPath, resolveTarget, writeSaved } from './config.js';
import { CliError, EXIT } from './errors.js';
import { details, newLines, printJson, shellJoin, table } from './output.js';
import { LogStream, resolveWsUrl } from './stream.js';

declare const FLEET_CLI_VERSION: string;
const VERSION = typeof FLEET_CLI_VERSION === 'string' ? FLEET_CLI_VERSION : 'dev';

interface Globals {
  url?: string;
  apiKey?: string;
  wsUrl?: string;
  json?: boolean;
  timeout: number;
}

const program = new Program('fleet')
  .description('The GPU fleet from the terminal: nodes, containers, training jobs, tasks and cloud GPUs.')
  .version(VERSION)
  .option('--url <url>', 'control plane URL (default: FLEET_URL, the login file, http://127.0.0.1:8000)')
  .option('--api-key <key>', 'API key (default: FLEET_API_KEY, the login file)')
  .option('--json', 'print the API’s JSON document instead of a table')
  .option(
    '--ws-url <url>',
    'WebSocket API URL for -f (default: FLEET_WS_URL, the console’s config.json, the control plane’s /ws)',
  )
  .addOption(
    new Option('--timeout <seconds>', 'how long to follow pending commands, tasks and runs')
      .default(120)
      .argParser(positiveInt),
  )
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 error, 2 bad arguments or refused request shape (400/422), 3 control plane
unreachable, 4 no or refused API key (401/403), 5 not found (404), 6 conflict (409), 7 still
pending at --timeout, 8 the command, task or run failed.`,
  );

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number ≥ 0');
  return n;
}

function checked<T>(schema: z.ZodType<T>, what: string) {
  return (v: string): T => {
    const r = schema.safeParse(v);
    if (!r.success) throw new InvalidArgumentError(`${what}: ${r.error.issues[0]?.message ?? 'invalid'}`);
    return r.data;
  };
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function keyValues(list: readonly string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`${what} must be KEY=VALUE: ${kv}`, EXIT.usage);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

async function session() {
  const g = program.opts<Globals>();
  const target = await resolveTarget({
    ...(g.url ? { url: g.url } : {}),
    ...(g.apiKey ? { apiKey: g.apiKey } : {}),
  });
  const ui = makeUi(!!g.json);
  const wsUrl = g.wsUrl ?? process.env['FLEET_WS_URL'];
  return {
    client: new Client(target, ui),
    json: !!g.json,
    timeoutMs: g.timeout * 1000,
    ...(wsUrl ? { wsUrl } : {}),
  };
}

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ login

program
  .command('login')
  .description(`check the control plane and save its URL and API key (${configPath()}, mode 0600)`)
  .option('--url <url>', 'control plane URL')
  .option('--api-key <key>', 'API key (with API_AUTH=true)')
  .action(async (opts: { url?: string; apiKey?: string }) => {
    const g = program.opts<Globals>();
    const target = await resolveTarget({
      ...((opts.url ?? g.url) ? { url: opts.url ?? g.url } : {}),
      ...((opts.apiKey ?? g.apiKey) ? { apiKey: opts.apiKey ?? g.apiKey } : {}),
    });
    const client = new Client(target, makeUi(!!g.json));
    const health = await client.get<{ status?: string }>('/health');
    // A user route: proves the key (or that auth is off) before it is saved.
    await client.get('/api/nodes/');
    await writeSaved({ url: target.url, ...(target.apiKey ? { apiKey: target.apiKey } : {}) });
    if (g.json) printJson({ url: target.url, config: configPath(), health: health.status ?? null });
    else
      console.log(
        `logged in to ${target.url} (health ${health.status ?? 'unknown'}); saved in ${configPath()}`,
      );
  });

// ------------------------------------------------------------------ nodes

interface NodeRow {
  id: string;
  name: string;
  status: string;
  [k: string]: unknown;
}

async function findNode(client: Client, ref: string): Promise<NodeRow> {
  const { nodes } = await client.get<{ nodes: NodeRow[] }>('/api/nodes/');
  const node = nodes.find((n) => n.id === ref || n.name === ref);
  if (!node) throw new CliError(`no node ${ref} (fleet nodes lists them)`, EXIT.notFound);
  return node;
}

program
  .command('nodes')
  .description('every node: status, CPU %, memory %, GPU %, GPU memory %, temperature °C, disk %')
  .action(async () => {
    const { client, json } = await session();
    const body = await client.get<{ nodes: NodeRow[] }>('/api/nodes/');
    if (json) return printJson(body);
    console.log(
      table(body.nodes, [
        'name',
        'id',
        'status',
        'cluster',
        'cpu',
        'memory',
        'gpu',
        'gpu_memory',
        'temperature',
        'disk',
        'last_seen',
      ]),
    );
  });

interface ContainerRow {
  id: string;
  name: string;
  image: string;
  status: string;
  node_id: string;
  [k: string]: unknown;
}

interface PolicyRow {
  allow_host_paths: string[];
  allow_engine_socket: boolean;
  allow_privileged: boolean;
  allow_host_network: boolean;
  allow_host_pid: boolean;
  allow_capabilities: string[];
}

/** The node's own policy in one line (GET /api/nodes/ `policy`; null: its agent reports none). */
function policyText(p: unknown): string {
  if (!p || typeof p !== 'object') return 'not reported (the agent judges each start itself)';
  const r = p as PolicyRow;
  const yes = (b: boolean) => (b ? 'allowed' : 'refused');
  return [
    `privileged ${yes(r.allow_privileged)}`,
    `host folders ${r.allow_host_paths.length ? r.allow_host_paths.join(', ') : 'none'}`,
    `engine socket ${yes(r.allow_engine_socket)}`,
    `host network ${yes(r.allow_host_network)}`,
    `host PID ${yes(r.allow_host_pid)}`,
    `capabilities ${r.allow_capabilities.length ? r.allow_capabilities.join(', ') : 'none'}`,
  ].join('; ');
}

program
  .command('node')
  .description('one node (id or name): its metrics, labels, policy and containers')
  .argument('<node>', 'node id or name')
  .action(async (ref: string) => {
    const { client, json } = await session();
    const node = await findNode(client, ref);
    const [swarm, containers] = await Promise.all([
      client.get<{ id: string; labels?: Record<string, string> }[]>('/api/swarm/nodes'),
      client.get<{ containers: ContainerRow[] }>('/containers'),
    ]);
    const labels = swarm.find((s) => s.id === node.id)?.labels ?? {};
    const mine = containers.containers.filter((c) => c.node_id === node.id);
    if (json) return printJson({ ...node, labels, containers: mine });
    console.log(details({ ...node, labels, policy: policyText(node['policy']) }));
    console.log('');
    console.log(mine.length ? table(mine, ['id', 'name', 'image', 'status', 'ports']) : 'no containers');
  });

// ------------------------------------------------------------------ containers

program
  .command('run')
  .description('start containers of an image on the fleet (the control plane picks nodes)')
  .argument('<image>', 'image reference, e.g. nginx:alpine', checked(imageRef, 'image'))
  .option(
    '--count <n>',
    'how many more copies',
    checked(z.coerce.number().int().min(1).max(100), '--count'),
    1,
  )
  .option('--gpus <n>', 'GPUs per copy', checked(z.coerce.number().int().min(0).max(16), '--gpus'))
  .option('--cpu <cores>', 'CPU limit in cores, e.g. 0.5', checked(cpuLimit, '--cpu'))
  .option('--memory <size>', 'memory limit, e.g. 512m or 1g', checked(memoryLimit, '--memory'))
  .option('--port <port>', 'container port to publish (repeatable)', collect)
  .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collect)
  .option('--node <node>', 'run on this node only (id or name)')
  .argument('[command...]', 'command to run instead of the image’s (after --)')
  .action(
    async (
      image: string,
      command: string[],
      o: {
        count: number;
        gpus?: number;
        cpu?: string;
        memory?: string;
        port?: string[];
        env?: string[];
        node?: string;
      },
    ) => {
      const { client, json, timeoutMs } = await session();
      const ports = (o.port ?? []).map((p) => {
        const n = Number(p);
        if (!Number.isInteger(n) || n < 1 || n > 65535)
          throw new CliError(`--port ${p}: 1 to 65535`, EXIT.usage);
        return n;
      });
      const resources = {
        ...(o.cpu ? { cpu_limit: o.cpu } : {}),
        ...(o.memory ? { memory_limit: o.memory } : {}),
        ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
      };
      const body = {
        count: o.count,
        ...(Object.keys(resources).length ? { resources } : {}),
        ...(ports.length ? { ports } : {}),
        ...(o.env ? { env: keyValues(o.env, '--env') } : {}),
        ...(command.length ? { command } : {}),
        ...(o.node ? { node_id: o.node } : {}),
      };
      const res = await client.act<{ started?: string[] }>('POST', `/containers/${enc(image)}/start`, body, {
        text: `starting ${o.count} × ${image}`,
        timeoutMs,
      });
      assertCommands(res.commands);
      const { instances } = await client.get<{ instances: ContainerRow[] }>(
        `/containers/${enc(image)}/instances`,
      );
      // A settled start names its copies; after a 202 the image's live copies are shown.
      const started = res.body?.started;
      const rows = instances.filter((i) =>
        started ? started.includes(i.id) : i.status === 'running' || i.status === 'pending',
      );
      if (json) return printJson({ image, started: rows });
      console.log(table(rows, ['id', 'status', 'node_id', 'ports']));
    },
  );

program
  .command('ps')
  .description('managed containers, fleet-wide')
  .option('--node <node>', 'only this node’s (id or name)')
  .option('--image <image>', 'only this image’s')
  .action(async (o: { node?: string; image?: string }) => {
    const { client, json } = await session();
    const body = await client.get<{ containers: ContainerRow[]; total: number }>('/containers');
    const nodeId = o.node ? (await findNode(client, o.node)).id : undefined;
    const rows = body.containers.filter(
      (c) => (!nodeId || c.node_id === nodeId) && (!o.image || c.image === o.image),
    );
    if (json) return printJson({ containers: rows, total: rows.length });
    console.log(table(rows, ['id', 'name', 'image', 'status', 'node_id', 'ports', 'created_at']));
  });

async function findContainer(client: Client, ref: string): Promise<ContainerRow> {
  const { containers } = await client.get<{ containers: ContainerRow[] }>('/containers');
  const c = containers.find((x) => x.id === ref || x.name === ref);
  if (!c) throw new CliError(`no container ${ref} (fleet ps lists them)`, EXIT.notFound);
  return c;
}

program
  .command('stop')
  .description('stop containers (one copy fewer wanted each), or every copy of an image with --image')
  .argument('[containers...]', 'container ids or names')
  .option('--image <image>', 'stop every copy of this image (its desired count becomes 0)')
  .action(async (refs: string[], o: { image?: string }) => {
    const { client, json, timeoutMs } = await session();
    if (!refs.length && !o.image) throw new CliError('name containers to stop, or --image', EXIT.usage);
    const targets = o.image
      ? (
          await client.get<{ instances: ContainerRow[] }>(`/containers/${enc(o.image)}/instances`)
        ).instances.filter((c) => c.status === 'running' || c.status === 'pending')
      : await Promise.all(refs.map((r) => findContainer(client, r)));
    const out: { id: string; name: string; stopped: boolean }[] = [];
    for (const c of targets) {
      const res = await client.act<{ stopped?: boolean }>(
        'POST',
        `/containers/${enc(o.image ?? c.image)}/stop`,
        { instanceId: c.id },
        { text: `stopping ${c.name}`, timeoutMs },
      );
      assertCommands(res.commands);
      out.push({ id: c.id, name: c.name, stopped: res.body?.stopped ?? true });
    }
    if (json) return printJson({ stopped: out });
    console.log(out.length ? table(out, ['id', 'name', 'stopped']) : 'nothing to stop');
  });

interface ServiceRow {
  id: string;
  name?: string | null;
  image: string;
  replicas?: number;
  [k: string]: unknown;
}

program
  .command('scale')
  .description('set the number of copies of a service (its id, name or image)')
  .argument('<service>', 'service id, name or image')
  .argument('<replicas>', 'copies wanted', checked(z.coerce.number().int().min(0).max(100), 'replicas'))
  .action(async (ref: string, replicas: number) => {
    const { client, json, timeoutMs } = await session();
    const services = await client.get<ServiceRow[]>('/api/swarm/services');
    const s = services.find((x) => x.id === ref || x.name === ref || x.image === ref);
    if (!s) throw new CliError(`no service ${ref} (GET /api/swarm/services lists them)`, EXIT.notFound);
    const res = await client.act<ServiceRow>(
      'POST',
      `/api/swarm/services/${enc(s.id)}/scale`,
      { replicas },
      { text: `scaling ${s.name ?? s.image} to ${replicas}`, timeoutMs },
    );
    assertCommands(res.commands);
    const now = (await client.get<ServiceRow[]>('/api/swarm/services')).find((x) => x.id === s.id) ?? {
      ...s,
      replicas,
    };
    if (json) return printJson(now);
    console.log(table([now], ['id', 'name', 'image', 'replicas', 'running']));
  });

// ------------------------------------------------------------------ logs and exec

/** The last lines of a container; a 202 is followed and the agent's reply read from the command. */
async function containerLogs(client: Client, id: string, tail: number, timeoutMs: number): Promise<string> {
  const answer = await client.ok<{ logs?: string; pending_commands?: string[] }>(
    'GET',
    `/api/swarm/containers/${enc(id)}/logs?tail=${tail}`,
  );
  if (answer.status === 202 && answer.body.pending_commands) {
    const [c] = await client.settle(answer.body.pending_commands, timeoutMs, 'the node to read the logs');
    assertCommands(c ? [c] : []);
    return String((c?.output as { logs?: unknown })?.logs ?? '');
  }
  return answer.body.logs ?? '';
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Prints the lines of each source, then with follow keeps polling and prints only new ones. */
async function followLogs(
  sources: () => Promise<{ id: string; name: string }[]>,
  read: (id: string) => Promise<string>,
  o: { follow?: boolean; tail: number; prefix: boolean; until?: () => Promise<boolean> },
): Promise<void> {
  const seen = new Map<string, string[]>();
  let stop = false;
  let last = false;
  process.once('SIGINT', () => (stop = true));
  for (;;) {
    for (const s of await sources()) {
      const lines = splitLines(await read(s.id));
      // An empty read (a container between states) must not make the next one look all new.
      if (!lines.length) continue;
      for (const l of newLines(seen.get(s.id) ?? [], lines)) console.log(o.prefix ? `${s.name} | ${l}` : l);
      seen.set(s.id, lines);
    }
    if (!o.follow || stop || last) return;
    // Once the source has ended, one more read for the lines written since the previous one.
    if (o.until && (await o.until())) {
      last = true;
      continue;
    }
    await sleep(1000);
    if (stop) return;
  }
}

/** Statuses in which a container still writes output. */
const WRITING = new Set(['pending', 'running', 'stopping']);

/**
 * `fleet logs -f`: one logs-channel WebSocket per container (the opt-in `?container=`), plus the
 * node's own log lines when no container is named. The tail each connection answers is matched
 * against what was printed, so a reconnect repeats nothing. The container list is read again every
 * few seconds: new containers are followed, ended ones get a last read over HTTP and are closed.
 * Ends on Ctrl-C, or when the one named container has ended.
 */
async function followStreams(
  client: Client,
  node: NodeRow,
  list: () => Promise<ContainerRow[]>,
  o: { container?: string; tail: number; timeoutMs: number; wsUrl?: string },
): Promise<void> {
  const target = {
    wsUrl: await resolveWsUrl(client.target.url, o.wsUrl),
    ...(client.target.apiKey ? { apiKey: client.target.apiKey } : {}),
  };
  const prefix = !o.container;
  const streams = new Map<string, { stream: LogStream; name: string }>();
  const status = new Map<string, string>();
  const ending = new Set<string>();
  let stopping = false;
  const refresh = async () => {
    const now = await list();
    // One no longer listed (removed) is not writing.
    status.clear();
    for (const c of now) status.set(c.id, c.status);
  };
  const start = (id: string, name: string, container: string | undefined) => {
    const stream = new LogStream(target, node.id, container, {
      line: (l) => console.log(prefix ? `${name} | ${l}` : l),
      note: (t) => console.error(`fleet: ${name}: ${t}`),
      alive: async () => {
        if (!container) return !stopping;
        await refresh();
        return !stopping && WRITING.has(status.get(container) ?? '');
      },
    });
    streams.set(id, { stream, name });
  };
  /** A container that ended: its last lines over HTTP (those the stream may have missed), then closed. */
  const finish = async (id: string) => {
    const s = streams.get(id);
    if (!s || ending.has(id)) return;
    ending.add(id);
    try {
      s.stream.catchUp(splitLines(await containerLogs(client, id, o.tail, o.timeoutMs)));
    } catch {
      // Removed already: what the stream showed is all there is.
    }
    s.stream.close();
  };
  const sync = async () => {
    const now = await list();
    status.clear();
    for (const c of now) {
      status.set(c.id, c.status);
      if (!streams.has(c.id) && WRITING.has(c.status)) start(c.id, c.name, c.id);
      else if (streams.has(c.id) && !WRITING.has(c.status)) await finish(c.id);
    }
    for (const id of streams.keys()) if (id !== node.id && !now.some((c) => c.id === id)) await finish(id);
  };
  if (!o.container) start(node.id, node.name, undefined);
  await sync();
  if (o.container && !streams.size) {
    // Not writing any more: its last lines, as without -f.
    const [c] = await list();
    if (c) console.log(splitLines(await containerLogs(client, c.id, o.tail, o.timeoutMs)).join('\n'));
    return;
  }
  const stopAll = () => {
    stopping = true;
    for (const s of streams.values()) s.stream.close();
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  const poller = setInterval(() => {
    if (!stopping) void sync().catch(() => undefined);
  }, 5000);
  try {
    // A refusal (401, bad request, no stream at that URL) rejects and ends the command with its code.
    for (;;) {
      const open = [...streams.values()].map((s) => s.stream.done);
      await Promise.all(open);
      if (stopping || o.container || streams.size === open.length) break;
    }
  } catch (error) {
    stopAll();
    throw error;
  } finally {
    clearInterval(poller);
    process.off('SIGINT', stopAll);
    process.off('SIGTERM', stopAll);
  }
}

program
  .command('logs')
  .description(
    'the last lines of a node’s containers (or one with --container); -f follows them live, with the node’s own log lines',
  )
  .argument('<node>', 'node id or name')
  .option('--container <id>', 'only this container (id or name)')
  .option(
    '-f, --follow',
    'keep printing new lines (WebSocket stream) until Ctrl-C, or until the container ends',
  )
  .option('--tail <n>', 'lines to read per container', positiveInt, 100)
  .action(async (ref: string, o: { container?: string; follow?: boolean; tail: number }) => {
    const { client, json, timeoutMs, wsUrl } = await session();
    const node = await findNode(client, ref);
    const list = async () => {
      const { containers } = await client.get<{ containers: ContainerRow[] }>('/containers');
      const mine = containers.filter(
        (c) => c.node_id === node.id && (!o.container || c.id === o.container || c.name === o.container),
      );
      if (o.container && !mine.length)
        throw new CliError(`no container ${o.container} on ${node.name}`, EXIT.notFound);
      return mine.filter((c) => c.status !== 'removed');
    };
    if (json) {
      const out = [];
      for (const s of await list())
        out.push({ id: s.id, name: s.name, logs: await containerLogs(client, s.id, o.tail, timeoutMs) });
      return printJson({ node_id: node.id, containers: out });
    }
    if (o.follow) {
      const named = o.container ? (await list())[0]?.id : undefined;
      return followStreams(client, node, list, {
        ...(named ? { container: named } : {}),
        tail: o.tail,
        timeoutMs,
        ...(wsUrl ? { wsUrl } : {}),
      });
    }
    await followLogs(list, (id) => containerLogs(client, id, o.tail, timeoutMs), {
      tail: o.tail,
      prefix: !o.container,
    });
  });

program
  .command('exec')
  .description('run a shell command on a node through its agent (the agent needs --allow-exec; admin key)')
  .argument('<node>', 'node id or name')
  .argument('<command...>', 'the command, after --')
  .option('--exec-timeout <seconds>', 'kill it after this long (1-120)', positiveInt, 30)
  .action(async (ref: string, command: string[], o: { execTimeout: number }) => {
    const { client, json, timeoutMs } = await session();
    const node = await findNode(client, ref);
    const res = await client.act<{ stdout: string; stderr: string; exit_status: number | null }>(
      'POST',
      '/api/ssh/exec-node',
      { node_id: node.id, command: shellJoin(command), timeout: o.execTimeout },
      { text: `running on ${node.name}`, timeoutMs },
    );
    assertCommands(res.commands);
    const out = (res.commands?.[0]?.output ?? res.body) as {
      stdout?: string;
      stderr?: string;
      exit_status?: number | null;
      exitStatus?: number | null;
    };
    const code = out.exit_status ?? out.exitStatus ?? null;
    if (json)
      printJson({ node_id: node.id, stdout: out.stdout ?? '', stderr: out.stderr ?? '', exit_status: code });
    else {
      process.stdout.write(out.stdout ?? '');
      process.stderr.write(out.stderr ?? '');
    }
    // Like ssh: the remote command's exit status is ours.
    process.exitCode = code ?? EXIT.failed;
  });

// ------------------------------------------------------------------ training jobs

interface JobRow {
  job_id: string;
  name: string;
  status: string;
  [k: string]: unknown;
}
interface RunRow {
  run_id: string;
  status: string;
  node_id?: string | null;
  attempt: number | null;
  exit_code: number | null;
  [k: string]: unknown;
}

const jobs = program.command('jobs').description('training jobs: list, create, runs, logs');

jobs
  .command('list', { isDefault: true })
  .description('jobs, newest first')
  .option('--status <status>', 'only jobs in this status')
  .action(async (o: { status?: string }) => {
    const { client, json } = await session();
    const body = await client.get<{ jobs: JobRow[] }>(
      `/jobs${o.status ? `?status_filter=${enc(o.status)}` : ''}`,
    );
    if (json) return printJson(body);
    console.log(table(body.jobs, ['job_id', 'name', 'status', 'schedule', 'next_run', 'image']));
  });

jobs
  .command('create')
  .description('create a training job: without --schedule it runs once, now')
  .requiredOption('--name <name>', 'job name (unique)')
  .requiredOption('--image <image>', 'training image')
  .option('--schedule <cron>', '5-field cron, e.g. "0 2 * * *"')
  .option('--timezone <tz>', 'IANA time zone of the schedule (default UTC)')
  .option('--gpus <n>', 'GPUs the run needs', checked(z.coerce.number().int().min(0).max(16), '--gpus'))
  .option('--cpu <cores>', 'CPU limit in cores', checked(cpuLimit, '--cpu'))
  .option('--memory <size>', 'memory limit, e.g. 4g', checked(memoryLimit, '--memory'))
  .option('--max-retries <n>', 'retries of a failed run (default 3)', positiveInt)
  .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collect)
  .argument('<command...>', 'the training command, after --')
  .action(
    async (
      command: string[],
      o: {
        name: string;
        image: string;
        schedule?: string;
        timezone?: string;
        gpus?: number;
        cpu?: string;
        memory?: string;
        maxRetries?: number;
        env?: string[];
      },
    ) => {
      const { client, json } = await session();
      const resources = {
        ...(o.cpu ? { cpu_limit: o.cpu } : {}),
        ...(o.memory ? { memory_limit: o.memory } : {}),
        ...(o.gpus !== undefined ? { gpus: o.gpus } : {}),
      };
      const body = {
        name: o.name,
        image: o.image,
        command,
        ...(o.schedule ? { schedule: o.schedule } : {}),
        ...(o.timezone ? { timezone: o.timezone } : {}),
        ...(o.maxRetries !== undefined ? { max_retries: o.maxRetries } : {}),
        ...(Object.keys(resources).length ? { resources } : {}),
        ...(o.env ? { env: keyValues(o.env, '--env') } : {}),
      };
      // The API's own schema: a bad cron or name fails here with its message, before any request.
      const parsed = jobCreate.safeParse(body);
      if (!parsed.success)
        throw new CliError(
          parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
          EXIT.usage,
        );
      const { body: job } = await client.ok<JobRow>('POST', '/jobs', body);
      if (json) return printJson(job);
      console.log(details(job));
    },
  );

jobs
  .command('runs')
  .description('runs of a job, newest first')
  .argument('<job>', 'job id')
  .action(async (jobId: string) => {
    const { client, json } = await session();
    const body = await client.get<{ runs: RunRow[] }>(`/jobs/${enc(jobId)}/runs`);
    if (json) return printJson(body);
    console.log(
      table(body.runs, [
        'run_id',
        'attempt',
        'status',
        'node_id',
        'started_at',
        'ended_at',
        'exit_code',
        'error',
      ]),
    );
  });

const RUN_ACTIVE = new Set(['pending', 'running']);

jobs
  .command('logs')
  .description('output of a job’s latest run (or --run); -f follows it until the run ends')
  .argument('<job>', 'job id')
  .option('--run <run_id>', 'this run instead of the latest')
  .option('-f, --follow', 'keep printing until the run ends; exit 8 if it failed')
  .option('--tail <n>', 'lines to read', positiveInt, 1000)
  .action(async (jobId: string, o: { run?: string; follow?: boolean; tail: number }) => {
    const { client, json, timeoutMs, wsUrl } = await session();
    const runs = async () => (await client.get<{ runs: RunRow[] }>(`/jobs/${enc(jobId)}/runs`)).runs;
    const pick = async (): Promise<RunRow | undefined> => {
      const all = (await runs()).filter((r) => r.attempt !== null);
      return o.run ? all.find((r) => r.run_id === o.run) : all[0];
    };
    let run = await pick();
    if (!run && o.follow) {
      const spinner = client.ui.spinner(`waiting for a run of ${jobId}`);
      const deadline = Date.now() + timeoutMs;
      while (!run && Date.now() < deadline) {
        await sleep(1000);
        run = await pick();
      }
      spinner.stop();
    }
    if (!run) throw new CliError(`job ${jobId} has no run yet`, o.follow ? EXIT.timeout : EXIT.notFound);
    const runId = run.run_id;
    // Live from the node while the run runs, the kept last lines once it ended (GET …/runs/{run_id}/logs).
    const read = async (id: string): Promise<string> => {
      const path = `/jobs/${enc(jobId)}/runs/${enc(id)}/logs?tail=${o.tail}`;
      const r = await client.ok<{ logs?: string; pending_commands?: string[] }>('GET', path);
      if (r.status !== 202 || !r.body.pending_commands) return r.body.logs ?? '';
      const [c] = await client.settle(r.body.pending_commands, timeoutMs, 'the node to read the logs');
      const logs = (c?.output as { logs?: unknown } | undefined)?.logs;
      if (c?.status === 'succeeded' && typeof logs === 'string') return logs;
      // The container ended meanwhile: the run keeps its last lines.
      const again = await client.ok<{ logs?: string }>('GET', path);
      return again.status === 200 ? (again.body.logs ?? '') : '';
    };
    if (json) return printJson({ job_id: jobId, run_id: runId, logs: await read(runId) });
    let last = run;
    const refresh = async () => (last = (await runs()).find((r) => r.run_id === runId) ?? last);
    if (o.follow && RUN_ACTIVE.has(last.status) && !last.node_id) {
      // Not placed yet: its node is where its output will stream from.
      const spinner = client.ui.spinner(`waiting for run ${runId} to be placed`);
      const deadline = Date.now() + timeoutMs;
      try {
        while (RUN_ACTIVE.has(last.status) && !last.node_id && Date.now() < deadline) {
          await sleep(1000);
          await refresh();
        }
      } finally {
        spinner.stop();
      }
    }
    if (o.follow && RUN_ACTIVE.has(last.status) && last.node_id) {
      // Live over the logs stream (the run's container opt-in), the kept lines read once it ended.
      const target = {
        wsUrl: await resolveWsUrl(client.target.url, wsUrl),
        ...(client.target.apiKey ? { apiKey: client.target.apiKey } : {}),
      };
      const stream = new LogStream(target, last.node_id, runId, {
        line: (l) => console.log(l),
        note: (t) => console.error(`fleet: ${t}`),
        alive: async () => RUN_ACTIVE.has((await refresh()).status),
      });
      const stop = () => stream.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let ending = false;
      const poller = setInterval(() => {
        if (ending) return;
        ending = true;
        void refresh()
          .then(async (r) => {
            if (RUN_ACTIVE.has(r.status)) return void (ending = false);
            stream.catchUp(splitLines(await read(runId).catch(() => '')));
            stream.close();
          })
          .catch(() => (ending = false));
      }, 2000);
      try {
        await stream.done;
      } finally {
        clearInterval(poller);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    } else
      await followLogs(async () => [{ id: runId, name: runId }], read, {
        ...o,
        prefix: false,
        until: async () => !RUN_ACTIVE.has((await refresh()).status),
      });
    if (o.follow) {
      // One last read: lines written between the previous read and the end.
      if (!RUN_ACTIVE.has(last.status)) {
        console.error(
          `run ${runId} ${last.status}${last.exit_code !== null ? ` (exit ${last.exit_code})` : ''}`,
        );
        if (last.status !== 'succeeded' && last.status !== 'completed') process.exitCode = EXIT.failed;
      }
    }
  });

// ------------------------------------------------------------------ tasks

interface TaskRow {
  task_id: string;
  status: string;
  result?: unknown;
  error?: string | null;
  [k: string]: unknown;
}
const TASK_DONE = new Set(['completed', 'failed', 'cancelled']);

const tasks = program.command('tasks').description('inference tasks on the shared queue');

tasks
  .command('submit')
  .description('submit a task; --wait follows it to its end (exit 8 if it failed)')
  .requiredOption('--model <name>', 'model name (GET /models/catalog)')
  .option('--type <task_type>', 'task type', 'generate')
  .option(
    '--param <KEY=VALUE>',
    'parameter (repeatable; values are JSON when they parse, else strings)',
    collect,
  )
  .option('--priority <p>', 'low | normal | high | critical', 'normal')
  .option('--wait', 'wait until it completes, fails or is cancelled')
  .action(async (o: { model: string; type: string; param?: string[]; priority: string; wait?: boolean }) => {
    const { client, json, timeoutMs } = await session();
    const parameters = Object.fromEntries(
      Object.entries(keyValues(o.param, '--param')).map(([k, v]) => {
        try {
          return [k, JSON.parse(v) as unknown];
        } catch {
          return [k, v];
        }
      }),
    );
    const { body: submitted } = await client.ok<TaskRow>('POST', '/tasks', {
      task_type: o.type,
      model_name: o.model,
      parameters,
      priority: o.priority,
    });
    let task: TaskRow = submitted;
    if (o.wait) {
      const spinner = client.ui.spinner(`task ${task.task_id}: ${task.status}`);
      const deadline = Date.now() + timeoutMs;
      try {
        while (!TASK_DONE.has(task.status)) {
          if (Date.now() >= deadline)
            throw new CliError(
              `task ${task.task_id} still ${task.status} after ${timeoutMs / 1000} s`,
              EXIT.timeout,
            );
          await sleep(1000);
          task = await client.get<TaskRow>(`/tasks/${enc(task.task_id)}`);
          spinner.text = `task ${task.task_id}: ${task.status}`;
        }
      } finally {
        spinner.stop();
      }
      if (task.status !== 'completed') process.exitCode = EXIT.failed;
    }
    if (json) return printJson(task);
    console.log(details(task));
  });

tasks
  .command('list', { isDefault: true })
  .description('tasks, newest first')
  .option('--status <status>', 'only tasks in this status')
  .action(async (o: { status?: string }) => {
    const { client, json } = await session();
    const body = await client.get<{ tasks: TaskRow[] }>(
      `/tasks${o.status ? `?status=${enc(o.status)}` : ''}`,
    );
    if (json) return printJson(body);
    console.log(
      table(body.tasks, ['task_id', 'status', 'task_type', 'model_name', 'assigned_worker', 'created_at']),
    );
  });

// ------------------------------------------------------------------ cloud and onboarding

program
  .command('instances')
  .description('Novita cloud GPU instances the control plane manages')
  .action(async () => {
    const { client, json } = await session();
    const body = await client.get<{ instances?: Record<string, unknown>[] } | Record<string, unknown>[]>(
      '/api/instances',
    );
    if (json) return printJson(body);
    const rows = Array.isArray(body) ? body : (body.instances ?? []);
    // Novita bills its products list's price per GPU hour × GPUs: the cost column is that product.
    const withCost = rows.map((r) => ({
      ...r,
      costPerHour:
        typeof r['pricePerHour'] === 'number' && typeof r['gpuNum'] === 'number'
          ? r['pricePerHour'] * r['gpuNum']
          : null,
    }));
    console.log(
      table(withCost, [
        'id',
        'name',
        'status',
        'region',
        'gpuNum',
        'pricePerHour',
        'costPerHour',
        'spot',
        'createdAt',
      ]),
    );
  });

program
  .command('join-command')
  .description('print the one line that joins a new node to the fleet (issues a join token; admin key)')
  .option('--ttl <seconds>', 'token lifetime (default JOIN_TOKEN_TTL_SECONDS, 24 h)', positiveInt)
  .option('--max-uses <n>', 'nodes the token may register', positiveInt)
  .option('--name <node>', 'the new node’s name (default: its hostname)')
  .action(async (o: { ttl?: number; maxUses?: number; name?: string }) => {
    const { client, json } = await session();
    const q = new URLSearchParams({ role: 'worker' });
    if (o.ttl !== undefined) q.set('ttl_seconds', String(o.ttl));
    if (o.maxUses !== undefined) q.set('max_uses', String(o.maxUses));
    if (o.name !== undefined) q.set('name', o.name);
    const t = await client.get<{
      token: string;
      id: string;
      expires_at: string;
      max_uses: number | null;
      install_command: string;
    }>(`/api/swarm/join-token?${q}`);
    if (json) return printJson(t);
    console.error(`# join token ${t.id}, valid until ${t.expires_at}; run this on the new node:`);
    console.log(t.install_command);
  });

// ------------------------------------------------------------------ entry

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    if (error instanceof CliError) {
      console.error(`fleet: ${error.message}`);
      return error.code;
    }
    console.error(`fleet: ${(error as Error).stack ?? String(error)}`);
    return EXIT.error;
  }
}

process.exitCode = await main(process.argv);
