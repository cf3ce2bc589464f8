import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from 'ssh2';
import type { CommandOf } from '../protocol/commands.js';
import {
  INSTALL_NAME,
  type HostFacts,
  type HostInstallOutput,
  type InstallCredential,
  type InstallStep,
  type InstallStepReport,
} from '../protocol/install.js';
import type { Logger } from './log.js';
import {
  connect as openSession,
  exec,
  fastPut,
  fingerprint,
  readRemote,
  rename,
  sftpOf,
  SshConnectError,
  writeRemote,
} from './ssh-session.js';
import { checkHost as runHostCheck, HostCheckError } from './host-check.js';

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

/** Opens the session; a refused connection or login fails the connect step. */
const connect = (command: Command, cred: InstallCredential, timeoutMs: number) =>
  openSession(command, cred, timeoutMs).catch((error: unknown) => {
    throw error instanceof SshConnectError ? new InstallStepError('connect', error.message) : error;
  });

/** Checks the host; a host the agent cannot run on fails the check step. */
const checkHost = (conn: Client) =>
  runHostCheck(conn).catch((error: unknown) => {
    throw error instanceof HostCheckError ? new InstallStepError('check', error.message) : error;
  });

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
