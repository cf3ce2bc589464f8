/**
 * The fake model server's test image, built locally like the busybox one (no registry is
 * reachable): a root filesystem with the repository's Node.js binary, the glibc libraries and
 * loader `ldd` says it needs, and test/fixtures/model-server/server.mjs as the command.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import type { ImportMethod } from './images.js';

const run = promisify(execFile);

export const NODE_BINARY = fileURLToPath(new URL('../../node_modules/node/bin/node', import.meta.url));
export const SERVER_SCRIPT = fileURLToPath(new URL('../fixtures/model-server/server.mjs', import.meta.url));
/** Where the server listens inside the container (the model declaration's `port`). */
export const MODEL_SERVER_PORT = 8080;
const CMD = ['/usr/local/bin/node', '/srv/server.mjs'];

/** The shared libraries (and the loader) a dynamic executable needs, as absolute host paths. */
export async function sharedLibraries(executable: string): Promise<string[]> {
  const { stdout } = await run('ldd', [executable]);
  const paths = new Set<string>();
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) paths.add(m[1]!);
  }
  if (![...paths].some((p) => /ld-linux|ld-musl/.test(p)))
    throw new Error(`ldd ${executable} named no dynamic loader:\n${stdout}`);
  return [...paths];
}

/** Image reference by content: a changed script or Node.js binary gets a new image. */
export async function modelServerImageRef(): Promise<string> {
  const hash = createHash('sha256')
    .update(await readFile(SERVER_SCRIPT))
    .update(String((await stat(NODE_BINARY)).size))
    .digest('hex')
    .slice(0, 12);
  return `localhost/fleet-test:model-server-${hash}`;
}

/** Writes the rootfs tar; returns its path (in a temp folder the caller removes). */
export async function modelServerRootfsTar(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-model-rootfs-'));
  const root = join(dir, 'rootfs');
  for (const sub of ['usr/local/bin', 'srv', 'tmp', 'etc', 'proc', 'sys', 'dev'])
    await mkdir(join(root, sub), { recursive: true });
  await copyFile(NODE_BINARY, join(root, CMD[0]!));
  await copyFile(SERVER_SCRIPT, join(root, 'srv', 'server.mjs'));
  // Same paths as on the host: the binary's loader path and the loader's search path hold there.
  for (const lib of await sharedLibraries(NODE_BINARY)) {
    await mkdir(join(root, dirname(lib)), { recursive: true });
    await copyFile(lib, join(root, lib)); // follows symlinks: the real file under the linked name
  }
  const tar = join(dir, 'rootfs.tar');
  await run('tar', ['-C', root, '-cf', tar, '.']);
  return tar;
}

async function commandOf(docker: Docker, ref: string): Promise<string[] | undefined> {
  try {
    const info = await docker.getImage(ref).inspect();
    return info.Config?.Cmd ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Imports with the server as the image's command: the engine API first (POST /images/create
 * with `changes`), `podman import --change` when the API refuses or drops the command.
 */
async function importWithCommand(docker: Docker, tar: string, ref: string): Promise<ImportMethod> {
  const change = `CMD ${JSON.stringify(CMD)}`;
  try {
    const stream = await docker.importImage(createReadStream(tar), {
      repo: ref,
      changes: [change],
    } as object);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
        const failed = (out ?? []).find((e) => e.error);
        if (err || failed) reject(err ?? new Error(failed!.error));
        else resolve();
      }),
    );
    if (JSON.stringify(await commandOf(docker, ref)) === JSON.stringify(CMD)) return 'api';
  } catch {
    // the CLI below
  }
  await run('podman', ['import', '--change', change, tar, ref], { maxBuffer: 16 * 1024 * 1024 });
  const cmd = await commandOf(docker, ref);
  if (JSON.stringify(cmd) !== JSON.stringify(CMD))
    throw new Error(`imported ${ref} but its command is ${JSON.stringify(cmd)}`);
  return 'podman-cli';
}

/** The model server image, built only when the engine lacks this version of it; returns its reference. */
export async function ensureModelServerImage(docker: Docker): Promise<string> {
  const ref = await modelServerImageRef();
  if (JSON.stringify(await commandOf(docker, ref)) === JSON.stringify(CMD)) return ref;
  const tar = await modelServerRootfsTar();
  try {
    await importWithCommand(docker, tar, ref);
  } finally {
    await rm(dirname(tar), { recursive: true, force: true });
  }
  return ref;
}
