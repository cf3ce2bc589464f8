// Dispatch latency and agent footprint: the embedded local runtime, one real agent process and
// the container engine at DOCKER_HOST (Podman), with the busybox test image present (built
// locally, never pulled).
//
//   1. API call → container running, over N sequential starts (default 50, after one warm-up
//      that is not counted): each is POST /containers/{image}/start {count: 1} on an otherwise
//      idle node, timed from just before the request is sent to
//        - the container's State.StartedAt as the engine records it (the process runs), and
//        - the API's 200 answer (the control plane has seen the agent's result; it polls the
//          command record with a 100 ms → 1 s back-off, so this is coarser);
//      then the copy is deleted (DELETE ?force=true, not timed) before the next start.
//   2. The agent's resident memory (VmRSS from /proc/<pid>/status, sampled every second) and CPU
//      share (utime+stime from /proc/<pid>/stat, as a percentage of one core) while it idles for
//      60 s (--idle-seconds) with no container, heartbeating at the control plane's default pace.
//
// The agent is the shipped form by default: agent/main.ts bundled by agent/build.ts and run with a
// bare `node` (--agent tsx runs the sources under tsx instead, which costs more memory).
//
// Run: eval "$(bash .ci/services.sh)"; npx tsx bench/dispatch.ts [--starts 50] [--idle-seconds 60]
//        [--agent bundle|tsx] [--node-args='--max-semi-space-size=1'] [--bare] [--https] [--sqs]
// --sqs runs the runtime against the AWS emulator at AWS_ENDPOINT_URL (moto, a deployment named for
// this run), so the agent takes its commands from its SQS queue, as on AWS.
// --https puts a TLS proxy in front of the runtime (a certificate made here for 127.0.0.1, given to
// the agent with NODE_EXTRA_CA_CERTS), so the agent talks https as it does to a control plane on AWS.
// The agent runs with the flags, environment and warmed code cache it is installed with (agent/node-flags.ts);
// --bare runs it with none (a plain `node agent.mjs`), --node-args adds to them.
// Prints figures; asserts nothing.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { AGENT_ENV, AGENT_NODE_FLAGS, COMPILE_CACHE } from '../agent/node-flags.js';
import { heartbeatIntervalSeconds } from '../functions/nodes/nodes.js';
import { startRuntime } from '../local/runtime.js';
import { ensureBusyboxImage } from '../test/harness/images.js';
import { engine as dockerClient, emulatorDeployment, uniqueName } from '../test/harness/services.js';
import {
  AgentProcess,
  call,
  REPO_ROOT,
  removeNodeContainers,
  RUN_UNTIL_TERM,
  sleep,
} from '../test/e2e/harness.js';

const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    starts: { type: 'string', default: '50' },
    'idle-seconds': { type: 'string', default: '60' },
    agent: { type: 'string', default: 'bundle' },
    /** Extra node options for the agent process, e.g. --node-args=--max-semi-space-size=1 */
    'node-args': { type: 'string', default: '' },
    /** Without the installed flags and environment (agent/node-flags.ts). */
    bare: { type: 'boolean', default: false },
    https: { type: 'boolean', default: false },
    sqs: { type: 'boolean', default: false },
  },
});
const STARTS = Number(values.starts);
const IDLE_SECONDS = Number(values['idle-seconds']);
const AGENT_FORM = values.agent === 'tsx' ? 'tsx' : 'bundle';
const NODE_ARGS = [
  ...(values.bare ? [] : AGENT_NODE_FLAGS),
  ...values['node-args'].split(' ').filter(Boolean),
];

if (!process.env.DOCKER_HOST) {
  console.error('DOCKER_HOST is unset: start the engine with eval "$(bash .ci/services.sh)"');
  process.exit(1);
}

/** Nearest-rank percentile (p99 of 50 samples is the slowest one). */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const CLK_TCK = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;

/** VmRSS, and its private (RssAnon) and file-backed (RssFile: mostly the node binary's pages) parts, in kB. */
async function memoryKb(pid: number): Promise<{ rss: number; anon: number; file: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}

/** utime + stime in clock ticks (fields 14 and 15; the command name in field 2 may hold spaces). */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14 → index 11, stime field 15 → index 12.
  return Number(fields[11]) + Number(fields[12]);
}

const ms = (n: number) => `${n.toFixed(0)} ms`;
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');

const docker = dockerClient();
const image = await ensureBusyboxImage(docker);
const engineVersion = (await docker.version()) as { Version?: string; Components?: { Name?: string }[] };
const scratch = await mkdtemp(join(tmpdir(), 'bench-dispatch-'));
const nodeName = `bench-${Date.now().toString(36)}`;

let entry: string[];
if (AGENT_FORM === 'bundle') {
  const bundle = join(scratch, 'agent.mjs');
  await run(process.execPath, ['--import', 'tsx', 'agent/build.ts', bundle], { cwd: REPO_ROOT });
  entry = [...NODE_ARGS, bundle];
  // As install.sh leaves it: the code cache written by one `--version` run before the service starts.
  if (!values.bare)
    await run(process.execPath, [...NODE_ARGS, bundle, '--version'], {
      env: { ...process.env, NODE_COMPILE_CACHE: join(scratch, 'state', COMPILE_CACHE) },
    });
} else {
  entry = [...NODE_ARGS, '--import', 'tsx', 'agent/main.ts'];
}

const rt = await startRuntime({
  port: 0,
  env: values.sqs
    ? { ...process.env, LOG_LEVEL: 'SILENT', ...emulatorDeployment(uniqueName('bench')) }
    : { ...process.env, AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT' },
});
/** A TLS proxy in front of the runtime, with a certificate for 127.0.0.1 made here (--https). */
async function tlsFront(target: string): Promise<{ url: string; ca: string; close(): void }> {
  const key = join(scratch, 'tls.key');
  const ca = join(scratch, 'tls.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    ca,
  ]);
  const upstream = new URL(target);
  const server = createHttpsServer({ key: await readFile(key), cert: await readFile(ca) }, (req, res) => {
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `https://127.0.0.1:${port}`, ca, close: () => server.close() };
}
const front = values.https ? await tlsFront(rt.url) : undefined;

// As installed: the unit's environment holds no CA settings of the shell's (a bundle in SSL_CERT_FILE
// would be read whole), only the TLS proxy's certificate when there is one.
const { SSL_CERT_FILE: _file, SSL_CERT_DIR: _dir, NODE_EXTRA_CA_CERTS: _extra, ...shellEnv } = process.env;
const agent = new AgentProcess({
  url: front?.url ?? rt.url,
  name: nodeName,
  stateDir: join(scratch, 'state'),
  entry,
  env: {
    ...shellEnv,
    ...(values.bare ? {} : { ...AGENT_ENV, NODE_COMPILE_CACHE: join(scratch, 'state', COMPILE_CACHE) }),
    FLEET_API_KEY: '',
    FLEET_URL: '',
    FLEET_NODE_NAME: '',
    ...(front ? { NODE_EXTRA_CA_CERTS: front.ca } : {}),
  },
});

try {
  await agent.start(60_000);

  // ------------------------------------------------------------ 1. dispatch latency
  const toRunning: number[] = [];
  const toAnswer: number[] = [];
  // --starts 0: no start at all, the agent idles right after registering.
  for (let i = 0; STARTS > 0 && i <= STARTS; i++) {
    const sentAt = Date.now();
    const res = await call(rt.url, 'POST', `/containers/${image}/start`, {
      count: 1,
      command: RUN_UNTIL_TERM,
    });
    const answeredAt = Date.now();
    if (res.status !== 200) throw new Error(`start ${i}: ${res.text}\n${agent.logTail()}`);
    const instanceId = res.body.started[0] as string;
    const [c] = await docker.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`fleet.instance=${instanceId}`] }),
    });
    if (!c) throw new Error(`start ${i}: no container for ${instanceId} on the engine`);
    const info = await docker.getContainer(c.Id).inspect();
    if (!info.State.Running) throw new Error(`start ${i}: container ${c.Id} is ${info.State.Status}`);
    if (i > 0) {
      toRunning.push(Date.parse(info.State.StartedAt) - sentAt);
      toAnswer.push(answeredAt - sentAt);
    }
    // Not timed. A 409 (the instance changed under the delete: the agent's result or a heartbeat) says retry.
    let del = await call(rt.url, 'DELETE', `/containers/${instanceId}?force=true`);
    for (let retry = 0; del.status === 409 && retry < 5; retry++)
      del = await call(rt.url, 'DELETE', `/containers/${instanceId}?force=true`);
    if (del.status !== 200) throw new Error(`delete ${i}: ${del.text}`);
  }
  toRunning.sort((a, b) => a - b);
  toAnswer.sort((a, b) => a - b);

  // ------------------------------------------------------------ 2. idle footprint
  const pid = agent.pid!;
  await sleep(2_000); // let the last deletion's work settle
  const samples = [await memoryKb(pid)];
  const ticks0 = await cpuTicks(pid);
  const t0 = performance.now();
  for (let s = 0; s < IDLE_SECONDS; s++) {
    await sleep(1_000);
    samples.push(await memoryKb(pid));
  }
  const cpuSeconds = (await cpuTicks(pid)) - ticks0;
  const wall = (performance.now() - t0) / 1000;
  const cpuPercent = (cpuSeconds / CLK_TCK / wall) * 100;

  const rss = samples.map((m) => m.rss);
  const maxRss = Math.max(...rss);
  const last = samples.at(-1)!;
  const engineName = engineVersion.Components?.[0]?.Name ?? 'engine';
  console.log(
    `dispatch bench: ${values.sqs ? 'local runtime on the AWS emulator (commands over SQS)' : 'embedded local runtime'}${front ? ' behind a TLS proxy (the agent on https)' : ' (the agent on http)'}, one agent (${AGENT_FORM === 'bundle' ? 'bundled agent/main.ts under node' : 'agent/main.ts under tsx'}, node ${process.version}${NODE_ARGS.length ? ` ${NODE_ARGS.join(' ')}` : ''}${
      values.bare
        ? ''
        : `, ${Object.entries(AGENT_ENV)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
    }), ${engineName} ${engineVersion.Version ?? '?'}, image ${image}`,
  );
  if (STARTS > 0) {
    const p50 = percentile(toRunning, 50);
    const p99 = percentile(toRunning, 99);
    console.log(
      `\nAPI call → container running: ${STARTS} sequential POST /containers/{image}/start {count:1}, each deleted before the next (1 warm-up not counted)`,
    );
    console.log(
      `  to engine State.StartedAt: p50 ${ms(p50)}  p99 ${ms(p99)}  min ${ms(toRunning[0]!)}  max ${ms(toRunning.at(-1)!)}`,
    );
    console.log(`      aim p50 < 1 s: ${mark(p50 < 1000)};  aim p99 < 2 s: ${mark(p99 < 2000)}`);
    console.log(
      `  to the API's 200 answer:   p50 ${ms(percentile(toAnswer, 50))}  p99 ${ms(percentile(toAnswer, 99))}  (the API polls the command record: 100 ms, then ×1.5 up to 1 s)`,
    );
  }
  console.log(
    `\nagent idle ${wall.toFixed(0)} s (pid ${pid}, no containers, heartbeat every ${heartbeatIntervalSeconds(rt.ctx)} s):`,
  );
  console.log(
    `  VmRSS: start ${mb(rss[0]!)}  end ${mb(rss.at(-1)!)}  max ${mb(maxRss)}    aim < 60 MB: ${mark(maxRss < 60 * 1024)}`,
  );
  console.log(
    `         at the end: RssAnon ${mb(last.anon)} (private)  RssFile ${mb(last.file)} (node binary and libraries, shareable)`,
  );
  console.log(
    `  CPU (utime+stime): ${(cpuSeconds / CLK_TCK).toFixed(2)} s over ${wall.toFixed(0)} s = ${cpuPercent.toFixed(2)} % of one core`,
  );
} finally {
  await agent.kill('SIGTERM');
  await removeNodeContainers(docker, [nodeName]);
  front?.close();
  await rt.stop();
  await rm(scratch, { recursive: true, force: true });
}
