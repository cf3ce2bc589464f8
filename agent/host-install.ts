import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import type { CommandOf } from '../protocol/commands.js';
import {
  hostFacts,
  INSTALL_NAME,
  type HostFacts,
  type HostInstallOutput,
  type InstallCredential,
  type InstallStep,
  type InstallStepReport,
} from '../protocol/install.js';
import type { Logger } from './log.js';

/**
 * host.install: onboards another machine over SSH. Login and join token are fetched for the
 * command and kept in memory only; the host key is trusted on first use (the control plane stores
 * it per host and sends it back: a different key is refused). The agent goes over as this agent's
 * own bundle and Node runtime (SFTP), behind {@link deliverAgent}, to become the agent installer
 * script once that exists.
 */

export interface HostInstallDeps {
  fetchCredential(commandId: string): Promise<InstallCredential>;
  /** Best effort: a lost progress report does not stop the install. */
  reportSteps(commandId: string, steps: InstallStepReport[]): Promise<void>;
  /** The control plane URL this agent uses; the new agent's default. */
  controlPlaneUrl: string;
  /** The bundled agent (dist/agent.mjs); default: this process's own bundle, else <repo>/dist/agent.mjs. */
  bundlePath?: string;
  /** The Node runtime copied over; default: this process's. */
  nodeBinary?: string;
  connectTimeoutMs?: number;
  logger: Logger;
}

type Command = CommandOf<'host.install'>;

/** A failure at a step, with the reason the job shows. */
export class InstallStepError extends Error {
  override name = 'InstallStepError';
  constructor(
    readonly step: InstallStep,
    message: string,
  ) {
    super(message);
  }
}

/** Where the agent lives on the host, under the login's home. */
const REMOTE_DIR = '.fleet-agent';

const nodeArch: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64' };

/** `ssh-ed25519 AAAA...` from the raw key blob the server presented. */
export function openSshKey(blob: Buffer): string {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type =
    len > 0 && len < 64 && blob.length >= 4 + len
      ? blob.subarray(4, 4 + len).toString('ascii')
      : 'ssh-unknown';
  return `${type} ${blob.toString('base64')}`;
}

/** OpenSSH's `SHA256:...` fingerprint of a key in OpenSSH form. */
export function fingerprint(openSsh: string): string {
  const b64 = openSsh.split(' ')[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(b64, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** Single-quoted for sh and for an env file sourced by sh. */
export const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const sha256Cache = new Map<string, Promise<string>>();
function sha256File(path: string): Promise<string> {
  let p = sha256Cache.get(path);
  if (!p) {
    p = new Promise<string>((res, rej) => {
      const h = createHash('sha256');
      createReadStream(path)
        .on('data', (d) => h.update(d))
        .on('error', rej)
        .on('end', () => res(h.digest('hex')));
    });
    sha256Cache.set(path, p);
    p.catch(() => sha256Cache.delete(path));
  }
  return p;
}

export function defaultBundlePath(): string {
  const self = fileURLToPath(import.meta.url);
  // Running as the bundle: copy ourselves. From source: the repository's build output.
  if (self.endsWith('.mjs')) return self;
  return resolve(dirname(self), '..', 'dist', 'agent.mjs');
}

// ------------------------------------------------------------------ SSH plumbing

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

function exec(conn: Client, command: string, stdin?: string): Promise<Exec> {
  return new Promise((res, rej) => {
    conn.exec(command, (err, ch: ClientChannel) => {
      if (err) return rej(err);
      let stdout = '';
      let stderr = '';
      ch.on('error', rej);
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('close', (code: number | null) => res({ code, stdout, stderr }));
      if (stdin !== undefined) ch.end(stdin);
      else ch.end();
    });
  });
}

// Failures come back through the callbacks; a stray 'error' event must not end the agent.
const sftpOf = (conn: Client) =>
  new Promise<SFTPWrapper>((res, rej) =>
    conn.sftp((err, s) => (err ? rej(err) : res(s.on('error', () => undefined)))),
  );

const fastPut = (sftp: SFTPWrapper, local: string, remote: string) =>
  new Promise<void>((res, rej) =>
    sftp.fastPut(local, remote, { mode: 0o755 }, (err) => (err ? rej(err) : res())),
  );

const writeRemote = (sftp: SFTPWrapper, remote: string, data: string, mode: number) =>
  new Promise<void>((res, rej) => sftp.writeFile(remote, data, { mode }, (err) => (err ? rej(err) : res())));

const rename = (sftp: SFTPWrapper, from: string, to: string) =>
  new Promise<void>((res, rej) => sftp.ext_openssh_rename(from, to, (err) => (err ? rej(err) : res())));

const readRemote = (sftp: SFTPWrapper, remote: string) =>
  new Promise<string | null>((res) =>
    sftp.readFile(remote, (err, data) => res(err ? null : data.toString('utf8'))),
  );

/** Reasons a person can act on, for the errors a connection and login give. */
function connectReason(
  error: Error & { level?: string; code?: string },
  target: string,
  user: string,
): string {
  if (error.level === 'client-authentication')
    return `authentication failed for user ${user} on ${target}: wrong username or password`;
  if (error.level === 'client-timeout') return `timed out connecting to ${target}`;
  switch (error.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${target}: is SSH running there?`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${target} is unreachable from this node`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${target}: the name does not resolve`;
    case 'ETIMEDOUT':
      return `timed out connecting to ${target}`;
  }
  return `could not connect to ${target}: ${error.message}`;
}

/** Opens the session, refusing a host key other than the stored one. */
function connect(
  command: Command,
  cred: InstallCredential,
  timeoutMs: number,
): Promise<{ conn: Client; hostKey: string }> {
  const target = `${command.host}:${command.port}`;
  return new Promise((res, rej) => {
    const conn = new Client();
    let presented: string | undefined;
    let changed = false;
    let settled = false;
    conn.once('ready', () => {
      settled = true;
      res({ conn, hostKey: presented! });
    });
    // A connection the host closes before SSH is up may end with no 'error' at all.
    conn.once('close', () => {
      if (settled) return;
      settled = true;
      rej(new InstallStepError('connect', `${target} closed the connection before SSH was ready`));
    });
    // `on`, not `once`: ssh2 may emit a second error (lost before handshake, a session dropped
    // later), and an error without a listener would take the whole agent down.
    conn.on('error', (error: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      conn.end();
      if (changed && presented && command.hostKey) {
        rej(
          new InstallStepError(
            'connect',
            `host key changed: ${target} presented ${fingerprint(presented)}, but ${fingerprint(command.hostKey)} is stored for it; refused (remove the stored key with DELETE /api/install-queue/host-keys/${command.host}?port=${command.port} if the change is expected)`,
          ),
        );
      } else rej(new InstallStepError('connect', connectReason(error, target, cred.username)));
    });
    conn.connect({
      host: command.host,
      port: command.port,
      username: cred.username,
      password: cred.password,
      tryKeyboard: false,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        presented = openSshKey(key);
        if (!command.hostKey) return true;
        changed = presented.split(' ')[1] !== command.hostKey.split(' ')[1];
        return !changed;
      },
    });
  });
}

// ------------------------------------------------------------------ host check

const CHECK_SCRIPT = `
echo "arch=$(uname -m)"
echo "kernel=$(uname -s)"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
( . /etc/os-release 2>/dev/null; echo "os=\${PRETTY_NAME:-unknown}" )
echo "home=$HOME"
if [ "$(id -u)" = 0 ]; then echo sudo=root
elif command -v sudo >/dev/null 2>&1; then if sudo -n true 2>/dev/null; then echo sudo=passwordless; else echo sudo=password; fi
else echo sudo=absent; fi
case "$DOCKER_HOST" in tcp://*) echo "engine_socket=$DOCKER_HOST" ;; esac
for s in "\${DOCKER_HOST#unix://}" /var/run/docker.sock /run/podman/podman.sock "\${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/podman/podman.sock"; do
  [ -n "$s" ] && [ -S "$s" ] || continue
  if [ -w "$s" ] && [ -r "$s" ]; then echo "engine_socket=unix://$s"; else echo "engine_socket_denied=unix://$s"; fi
done
`;

interface Checked {
  facts: HostFacts;
  home: string;
  dockerHost: string;
}

async function checkHost(conn: Client): Promise<Checked> {
  // A login shell: DOCKER_HOST and PATH as the user set them in their profile.
  const out = await exec(conn, 'sh -l -s', CHECK_SCRIPT);
  if (out.code !== 0)
    throw new InstallStepError(
      'check',
      `the host check script failed (exit ${out.code}): ${out.stderr.slice(-500)}`,
    );
  const kv = new Map<string, string>();
  const denied: string[] = [];
  for (const line of out.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1).trim();
    if (k === 'engine_socket_denied') denied.push(v);
    else if (!kv.has(k)) kv.set(k, v);
  }
  const socket = kv.get('engine_socket') ?? null;
  const facts = hostFacts.parse({
    arch: kv.get('arch') ?? 'unknown',
    os: `${kv.get('os') ?? 'unknown'} (${kv.get('kernel') ?? 'unknown'})`,
    hostname: kv.get('hostname') ?? '',
    engine: socket ? `${/podman/.test(socket) ? 'podman' : 'docker'} at ${socket}` : null,
    sudo: kv.get('sudo') ?? 'absent',
  });
  if (kv.get('kernel') !== 'Linux')
    throw new InstallStepError('check', `the host runs ${facts.os}: the agent runs on Linux only`);
  const want = nodeArch[process.arch] ?? process.arch;
  if (facts.arch !== want)
    throw new InstallStepError(
      'check',
      `the host is ${facts.arch} and this node carries a Node runtime for ${want} only: install it with the agent installer script`,
    );
  if (!socket)
    throw new InstallStepError(
      'check',
      denied.length
        ? `the container engine socket ${denied.join(', ')} is not usable by this login (add the user to the docker group, or log in as root)`
        : 'no Docker or Podman engine found (DOCKER_HOST, /var/run/docker.sock, the Podman sockets): install one first',
    );
  const home = kv.get('home') ?? '';
  if (!home.startsWith('/'))
    throw new InstallStepError('check', 'the login has no home folder to install into');
  return { facts, home, dockerHost: socket };
}

// ------------------------------------------------------------------ delivery

export interface Delivery {
  home: string;
  nodeName: string;
  env: Record<string, string>;
  bundlePath: string;
  nodeBinary: string;
  /** This agent's pid: on its own host it must not stop itself. */
  selfPid: number;
}

/**
 * Puts the agent on the host and starts it detached with its environment; returns the remote
 * clock at the start (for the registration check). The one place that changes when the agent
 * installer script replaces the copy.
 */
export async function deliverAgent(
  conn: Client,
  d: Delivery,
  step: (name: InstallStep, status: 'running' | 'ok', detail?: string) => Promise<void>,
): Promise<{ startedAt: number; pid: number }> {
  const dir = `${d.home}/${REMOTE_DIR}`;
  await step('upload', 'running');
  try {
    const mk = await exec(
      conn,
      `mkdir -p ${shQuote(`${dir}/bin`)} && chmod 700 ${shQuote(dir)} && (sha256sum ${shQuote(`${dir}/bin/node`)} 2>/dev/null || true)`,
    );
    if (mk.code !== 0) throw new Error(`could not create ${dir}: ${mk.stderr.trim()}`);
    const sftp = await sftpOf(conn);
    try {
      const localSum = await sha256File(d.nodeBinary);
      const runtime =
        mk.stdout.split(/\s/)[0] === localSum ? 'Node runtime already there' : 'Node runtime copied';
      if (runtime === 'Node runtime copied') {
        await fastPut(sftp, d.nodeBinary, `${dir}/bin/node.tmp`);
        await rename(sftp, `${dir}/bin/node.tmp`, `${dir}/bin/node`);
      }
      await fastPut(sftp, d.bundlePath, `${dir}/bin/agent.mjs.tmp`);
      await rename(sftp, `${dir}/bin/agent.mjs.tmp`, `${dir}/bin/agent.mjs`);
      const envText = Object.entries(d.env)
        .map(([k, v]) => `${k}=${shQuote(v)}\n`)
        .join('');
      await writeRemote(sftp, `${dir}/agent.env`, envText, 0o600);
      await step('upload', 'ok', `${runtime}, agent bundle copied to ${dir}/bin`);
    } finally {
      sftp.end();
    }
  } catch (error) {
    if (error instanceof InstallStepError) throw error;
    throw new InstallStepError('upload', (error as Error).message);
  }

  await step('start', 'running');
  // Stops a previous agent of this folder first (a re-install), then starts detached from the session.
  const script = `
set -e
cd ${shQuote(dir)}
if [ -f agent.pid ]; then
  old=$(cat agent.pid)
  if [ "$old" = "${d.selfPid}" ]; then echo "this host is the installing node itself: its agent would replace itself" >&2; exit 3; fi
  if kill -0 "$old" 2>/dev/null; then
    kill "$old"; i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  fi
fi
echo "started=$(date +%s)"
set -a; . ./agent.env; set +a
setsid ./bin/node ./bin/agent.mjs >> agent.log 2>&1 < /dev/null &
echo $! > agent.pid
echo "pid=$!"
`;
  const out = await exec(conn, 'sh -s', script);
  const started = /started=(\d+)/.exec(out.stdout);
  const pid = /pid=(\d+)/.exec(out.stdout);
  if (out.code !== 0 || !started || !pid)
    throw new InstallStepError(
      'start',
      `could not start the agent (exit ${out.code}): ${out.stderr.trim().slice(-500)}`,
    );
  await step('start', 'ok', `agent started (pid ${pid[1]}), log ${dir}/agent.log`);
  return { startedAt: Number(started[1]), pid: Number(pid[1]) };
}

/** Waits for the new agent's registration file, written after the control plane accepted it. */
async function awaitRegistration(
  conn: Client,
  home: string,
  nodeName: string,
  started: { startedAt: number; pid: number },
  timeoutMs: number,
): Promise<string> {
  const dir = `${home}/${REMOTE_DIR}`;
  const sftp = await sftpOf(conn);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await readRemote(sftp, `${dir}/${nodeName}/registration.json`);
      if (text) {
        try {
          const r = JSON.parse(text) as { nodeId?: unknown; nodeName?: unknown; registeredAt?: unknown };
          const at = Date.parse(String(r.registeredAt)) / 1000;
          if (typeof r.nodeId === 'string' && r.nodeName === nodeName && at >= started.startedAt - 1)
            return r.nodeId;
        } catch {
          // Being written: read again.
        }
      }
      const alive = await exec(conn, `kill -0 ${started.pid} 2>/dev/null && echo alive || echo gone`);
      if (!alive.stdout.includes('alive') || Date.now() > deadline) {
        const tail = await exec(conn, `tail -n 5 ${shQuote(`${dir}/agent.log`)} 2>/dev/null`);
        const why = alive.stdout.includes('alive')
          ? `not registered within ${Math.round(timeoutMs / 1000)} s`
          : 'the agent exited';
        throw new InstallStepError(
          'register',
          `${why}; last log lines: ${tail.stdout.trim().slice(-1200) || '(none)'}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    sftp.end();
  }
}

// ------------------------------------------------------------------ the command

export async function installHost(
  command: Command,
  commandId: string,
  deps: HostInstallDeps,
): Promise<HostInstallOutput> {
  const log = deps.logger.child({ component: 'host-install', commandId, host: command.host });
  const steps: InstallStepReport[] = [];
  const step = async (name: InstallStep, status: InstallStepReport['status'], detail = '') => {
    const report = { name, status, detail, at: new Date().toISOString() };
    const i = steps.findIndex((s) => s.name === name);
    if (i >= 0) steps[i] = report;
    else steps.push(report);
    log.info('install step', { step: name, status });
    await deps
      .reportSteps(commandId, [...steps])
      .catch((error: unknown) => log.warn('step report failed', { error }));
  };

  const bundlePath = deps.bundlePath ?? defaultBundlePath();
  const nodeBinary = deps.nodeBinary ?? process.execPath;
  if (!existsSync(bundlePath))
    throw new Error(
      `no agent bundle at ${bundlePath} to install: build it (npm run build:agent) or set FLEET_AGENT_BUNDLE`,
    );

  // Fetched for this command only; kept in this scope, never logged or reported.
  const cred = await deps.fetchCredential(commandId);
  let conn: Client | undefined;
  let hostKey: string | undefined;
  let facts: HostFacts | undefined;
  let current: InstallStep = 'connect';
  try {
    await step('connect', 'running', `${cred.username}@${command.host}:${command.port}`);
    ({ conn, hostKey } = await connect(command, cred, deps.connectTimeoutMs ?? 20_000));
    await step(
      'connect',
      'ok',
      `${command.hostKey ? 'host key matches the stored one' : 'host key trusted on first use'}: ${fingerprint(hostKey)}`,
    );

    current = 'check';
    await step('check', 'running');
    const checked = await checkHost(conn);
    facts = checked.facts;
    const nodeName = command.nodeName ?? checked.facts.hostname.split('.')[0]!;
    if (!INSTALL_NAME.test(nodeName))
      throw new InstallStepError(
        'check',
        `the host's name "${nodeName}" is not a usable node name: give one`,
      );
    await step(
      'check',
      'ok',
      `${checked.facts.arch}, ${checked.facts.os}, ${checked.facts.engine}, sudo: ${checked.facts.sudo}`,
    );

    current = 'upload';
    const env: Record<string, string> = {
      FLEET_URL: command.controlPlaneUrl ?? deps.controlPlaneUrl,
      FLEET_JOIN_TOKEN: cred.joinToken,
      FLEET_NODE_NAME: nodeName,
      FLEET_STATE_DIR: `${checked.home}/${REMOTE_DIR}/${nodeName}`,
      DOCKER_HOST: checked.dockerHost,
      ...(command.cluster ? { FLEET_CLUSTER: command.cluster } : {}),
    };
    const started = await deliverAgent(
      conn,
      { home: checked.home, nodeName, env, bundlePath, nodeBinary, selfPid: process.pid },
      async (n, s, d) => {
        current = n;
        await step(n, s, d);
      },
    );

    current = 'register';
    await step('register', 'running');
    const nodeId = await awaitRegistration(
      conn,
      checked.home,
      nodeName,
      started,
      command.joinTimeoutSeconds * 1000,
    );
    // Used up: the agent re-registers with its own credential from now on.
    await exec(conn, `sed -i '/^FLEET_JOIN_TOKEN=/d' ${shQuote(`${checked.home}/${REMOTE_DIR}/agent.env`)}`);
    await step('register', 'ok', `registered as node ${nodeName} (${nodeId})`);
    return { outcome: 'joined', steps, facts, hostKey, nodeId, nodeName };
  } catch (error) {
    const failedStep = error instanceof InstallStepError ? error.step : current;
    const reason = (error as Error).message;
    await step(failedStep, 'failed', reason);
    return {
      outcome: 'failed',
      failedStep,
      reason,
      steps,
      ...(facts ? { facts } : {}),
      ...(hostKey ? { hostKey } : {}),
    };
  } finally {
    conn?.end();
  }
}
