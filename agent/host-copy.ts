import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from 'ssh2';
import type { InstallStep } from '../protocol/install.js';
import { InstallStepError, shQuote } from './host-steps.js';
import { exec, fastPut, readRemote, rename, sftpOf, writeRemote } from './ssh-session.js';

/**
 * host.install on a host where the login cannot be root (no sudo): this agent's own bundle and
 * Node runtime go to the login's home over SFTP and run there as the login, detached.
 */

/** Where the agent lives on the host, under the login's home. */
export const REMOTE_DIR = '.fleet-agent';

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

/** ssh2 bundled apart, beside agent.mjs (agent/build.ts). */
export const SSH2_FILE = 'agent-ssh2.cjs';

export function defaultBundlePath(): string {
  const self = fileURLToPath(import.meta.url);
  // Running as the bundle: copy ourselves. From source: the repository's build output.
  if (self.endsWith('.mjs')) return self;
  return resolve(dirname(self), '..', 'dist', 'agent.mjs');
}

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
      // ssh2's file beside the bundle (agent/build.ts), so that agent can install hosts in turn.
      const ssh2 = join(dirname(d.bundlePath), SSH2_FILE);
      if (existsSync(ssh2)) {
        await fastPut(sftp, ssh2, `${dir}/bin/${SSH2_FILE}.tmp`);
        await rename(sftp, `${dir}/bin/${SSH2_FILE}.tmp`, `${dir}/bin/${SSH2_FILE}`);
      }
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
export async function awaitRegistration(
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
