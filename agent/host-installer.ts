import type { Client } from 'ssh2';
import type { InstallStep } from '../protocol/install.js';
import { InstallStepError, shQuote } from './host-steps.js';
import { exec, type Exec } from './ssh-session.js';

/**
 * host.install on a host where the login can be root (root itself, or sudo): the host downloads
 * the agent installer (GET /install.sh of the control plane) and runs it as root with a fresh join
 * token, as the one-line install does. It installs the agent as a systemd service (or its container
 * image where the host cannot run the service), and the new agent registers.
 */

/** How the login becomes root: `root` is root already; `sudo -n`; `sudo -S` fed the login's password. */
export type RootBy = 'root' | 'passwordless' | 'password';

/** What install.sh writes (its settings file, its state folder). */
const AGENT_ENV = '/etc/fleet-agent/agent.env';
const REGISTRATION = '/var/lib/fleet-agent/registration.json';

/** Runs `script` with sh as root; the password (sudo -S) goes on stdin, never on a command line. */
function asRoot(conn: Client, by: RootBy, password: string, script: string, onLine?: (line: string) => void) {
  if (by === 'root') return exec(conn, 'sh -s', script, onLine);
  if (by === 'passwordless') return exec(conn, 'sudo -n sh -s', script, onLine);
  return exec(conn, `sudo -S -p '' sh -c ${shQuote(script)}`, `${password}\n`, onLine);
}

export interface InstallerRun {
  conn: Client;
  by: RootBy;
  password: string;
  url: string;
  joinToken: string;
  nodeName: string;
  cluster?: string;
}

/** Downloads install.sh on the host and runs it; its progress lines become the step's detail. */
export async function runInstaller(
  r: InstallerRun,
  step: (name: InstallStep, status: 'running' | 'ok', detail?: string) => Promise<void>,
): Promise<{ startedAt: number }> {
  const url = r.url.replace(/\/+$/, '');
  const args = [
    '--url',
    url,
    '--token',
    r.joinToken,
    '--name',
    r.nodeName,
    ...(r.cluster ? ['--cluster', r.cluster] : []),
  ]
    .map(shQuote)
    .join(' ');
  const script = `
set -e
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$d/install.sh" ${shQuote(`${url}/install.sh`)}
else wget -q -O "$d/install.sh" ${shQuote(`${url}/install.sh`)}; fi
echo "started=$(date +%s)"
sh "$d/install.sh" ${args}
`;
  await step('install', 'running', `running ${url}/install.sh as root`);
  let last = Promise.resolve();
  const out = await asRoot(r.conn, r.by, r.password, script, (line) => {
    const said = /^fleet-agent install: (.*)$/.exec(line)?.[1];
    // One report at a time, in order; a lost one does not stop the install.
    if (said) last = last.then(() => step('install', 'running', said.slice(0, 500)));
  });
  await last;
  const started = /started=(\d+)/.exec(out.stdout);
  if (out.code !== 0 || !started)
    throw new InstallStepError('install', `install.sh failed (exit ${out.code}): ${tail(out)}`);
  const said = [...out.stderr.matchAll(/^fleet-agent install: (.*)$/gm)].map((m) => m[1]);
  await step('install', 'ok', said.at(-1) ?? 'installed');
  return { startedAt: Number(started[1]) };
}

const tail = (out: Exec) => (out.stderr.trim() || out.stdout.trim()).slice(-800) || '(no output)';

/**
 * Waits for the new agent's registration file (written once the control plane accepted it) in the
 * service's state folder, or the container's; then drops the used join token from the settings.
 */
export async function awaitInstalledRegistration(
  r: InstallerRun,
  startedAt: number,
  timeoutMs: number,
): Promise<string> {
  const read = `
if [ -f ${REGISTRATION} ]; then cat ${REGISTRATION}
else for c in docker podman; do command -v $c >/dev/null 2>&1 && $c exec fleet-agent cat ${REGISTRATION} 2>/dev/null && break; done; fi
exit 0
`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await asRoot(r.conn, r.by, r.password, read);
    try {
      const reg = JSON.parse(out.stdout) as { nodeId?: unknown; nodeName?: unknown; registeredAt?: unknown };
      const at = Date.parse(String(reg.registeredAt)) / 1000;
      if (typeof reg.nodeId === 'string' && reg.nodeName === r.nodeName && at >= startedAt - 1) {
        await asRoot(
          r.conn,
          r.by,
          r.password,
          `[ ! -f ${AGENT_ENV} ] || sed -i '/^FLEET_JOIN_TOKEN=/d' ${AGENT_ENV}`,
        );
        return reg.nodeId;
      }
    } catch {
      // Not there yet, or being written: read again.
    }
    if (Date.now() > deadline) {
      const logs = await asRoot(
        r.conn,
        r.by,
        r.password,
        'journalctl -u fleet-agent -n 5 --no-pager -o cat 2>/dev/null || docker logs --tail 5 fleet-agent 2>&1 || podman logs --tail 5 fleet-agent 2>&1; exit 0',
      );
      throw new InstallStepError(
        'register',
        `not registered within ${Math.round(timeoutMs / 1000)} s; last log lines: ${logs.stdout.trim().slice(-1200) || '(none)'}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
