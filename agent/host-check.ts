import type { Client } from 'ssh2';
import { hostFacts, type HostFacts } from '../protocol/install.js';
import { exec } from './ssh-session.js';

/** host.install's check step: what the host is, and whether the agent can run there. */

/** A host the agent cannot be installed on, and why. */
export class HostCheckError extends Error {
  override name = 'HostCheckError';
}

const nodeArch: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64' };

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
if command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1; then echo fetcher=yes; else echo fetcher=no; fi
for s in "\${DOCKER_HOST#unix://}" /var/run/docker.sock /run/podman/podman.sock "\${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/podman/podman.sock"; do
  [ -n "$s" ] && [ -S "$s" ] || continue
  if [ -w "$s" ] && [ -r "$s" ]; then echo "engine_socket=unix://$s"; else echo "engine_socket_denied=unix://$s"; fi
done
`;

export interface Checked {
  facts: HostFacts;
  home: string;
  /** The engine socket this login may use; null when none (root reaches any that exists). */
  dockerHost: string | null;
  /** Engine sockets that exist but this login may not use (root may). */
  denied: string[];
  /** curl or wget is there (install.sh downloads with them). */
  canDownload: boolean;
}

/** What the host is; refuses only what no way of installing can run on (not Linux). */
export async function checkHost(conn: Client): Promise<Checked> {
  // A login shell: DOCKER_HOST and PATH as the user set them in their profile.
  const out = await exec(conn, 'sh -l -s', CHECK_SCRIPT);
  if (out.code !== 0)
    throw new HostCheckError(`the host check script failed (exit ${out.code}): ${out.stderr.slice(-500)}`);
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
    throw new HostCheckError(`the host runs ${facts.os}: the agent runs on Linux only`);
  const home = kv.get('home') ?? '';
  if (!socket && denied.length === 0)
    throw new HostCheckError(
      'no Docker or Podman engine found (DOCKER_HOST, /var/run/docker.sock, the Podman sockets): install one first',
    );
  return { facts, home, dockerHost: socket, denied, canDownload: kv.get('fetcher') === 'yes' };
}

/**
 * Without root the agent is copied to the login's home and runs as the login: this node's runtime
 * must fit the host, and the login must reach the engine itself.
 */
export function checkForCopy(checked: Checked): string {
  const want = nodeArch[process.arch] ?? process.arch;
  if (checked.facts.arch !== want)
    throw new HostCheckError(
      `the host is ${checked.facts.arch}, this node carries a Node runtime for ${want} only, and the login cannot be root to run the agent installer`,
    );
  if (!checked.dockerHost)
    throw new HostCheckError(
      `the container engine socket ${checked.denied.join(', ')} is not usable by this login (add the user to the docker group, or log in as root)`,
    );
  if (!checked.home.startsWith('/')) throw new HostCheckError('the login has no home folder to install into');
  return checked.dockerHost;
}
