/**
 * What the install.sh suites share: the shared engine's socket, the podman CLI's settings, a
 * socket proxy for an install's scratch root, and running a command for its code and output.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalProcess } from './local-process.js';

export const ENGINE_SOCKET = (process.env.DOCKER_HOST ?? 'unix:///tmp/fleet-engine.sock').replace(
  /^unix:\/\//,
  '',
);

const CI_CONTAINERS_CONF = fileURLToPath(new URL('../../.ci/state/containers.conf', import.meta.url));

/**
 * The podman CLI (image build, and install.sh where no docker CLI is installed) needs the engine
 * settings .ci/services.sh wrote for the shared engine (runc, cgroupfs): crun fails on these machines.
 */
export function useCiContainersConf(): void {
  if (!process.env.CONTAINERS_CONF && existsSync(CI_CONTAINERS_CONF))
    process.env.CONTAINERS_CONF = CI_CONTAINERS_CONF;
}

/** A socket at `path` (group `gid`, 0660) that passes every connection to the shared engine. */
export async function engineSocketAt(path: string, gid: number): Promise<Server> {
  const proxy = createServer((client) => {
    const upstream = createConnection(ENGINE_SOCKET);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  proxy.listen(path);
  await once(proxy, 'listening');
  await chown(path, 0, gid);
  await chmod(path, 0o660);
  return proxy;
}

/** Runs a command; resolves with its exit code and output (stdout and stderr) whatever the code. */
export function capture(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...(env ? { env } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** The control plane install.sh talks to: a local process with API keys on, serving `assets`. */
export async function startInstallServer(dir: string, assets: string, apiKey: string) {
  const data = join(dir, 'data');
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'secrets.json'), JSON.stringify({ 'api-key': apiKey }), { mode: 0o600 });
  return startLocalProcess(data, {
    AWS_ENDPOINT_URL: '',
    API_AUTH: 'true',
    LOG_LEVEL: 'WARN',
    INSTALL_ASSETS_DIR: assets,
  });
}
