/**
 * Test images built locally: these machines reach no registry. A root filesystem holding a static
 * busybox (Debian's busybox-static) and its applet links is tarred and imported into the engine.
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';

const run = promisify(execFile);

export const BUSYBOX_IMAGE = 'localhost/fleet-test:busybox';
const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'httpd', 'ls', 'mkdir', 'wget', 'true', 'env'];

/** How an image got into the engine: its own API, or the engine's CLI (podman, docker) as a fallback. */
export type ImportMethod = 'api' | 'podman-cli';

/** Writes a tar of a busybox root filesystem; returns its path (in a temp folder the caller removes). */
export async function busyboxRootfsTar(
  busybox = process.env.BUSYBOX_PATH ?? '/bin/busybox',
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-rootfs-'));
  const root = join(dir, 'rootfs');
  for (const sub of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev', 'www'])
    await mkdir(join(root, sub), { recursive: true });
  // Must be the static build: the rootfs has no libc for a dynamic one.
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
  const tar = join(dir, 'rootfs.tar');
  await run('tar', ['-C', root, '-cf', tar, '.']);
  return tar;
}

/**
 * Imports a rootfs tar as `ref` through the engine API (POST /images/create?fromSrc=-), falling back
 * to `podman import` when the API refuses.
 *
 * Podman 4.3's compat route ignores the `tag` parameter (it tags `<repo>:latest`) but honours a
 * reference with its tag in `repo`, so the whole reference goes there; should the tag still be
 * missing, the imported image id is tagged explicitly.
 */
export async function importImage(docker: Docker, tar: string, ref: string): Promise<ImportMethod> {
  try {
    const stream = await docker.importImage(createReadStream(tar), { repo: ref });
    const events = await new Promise<{ id?: string; status?: string; error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) =>
        err ? reject(err) : resolve(out ?? []),
      ),
    );
    const failed = events.find((e) => e.error);
    if (failed) throw new Error(failed.error);
    if (!(await hasImage(docker, ref))) {
      const id = events.map((e) => e.id ?? e.status).find((v) => v?.startsWith('sha256:'));
      if (!id) throw new Error(`import answered without an image id: ${JSON.stringify(events)}`);
      const { repo, tag } = splitRef(ref);
      await docker.getImage(id).tag({ repo, tag });
    }
    await docker.getImage(ref).inspect();
    return 'api';
  } catch (apiError) {
    try {
      // The engine's own CLI: Debian's docker (by full path: another may come first on PATH) for dockerd.
      const podman = ((await docker.version()).Components ?? []).some((c) => /podman/i.test(c.Name));
      const socket = (docker.modem as { socketPath?: string }).socketPath;
      if (podman || !socket) await run('podman', ['import', tar, ref]);
      else await run('/usr/bin/docker', ['-H', `unix://${socket}`, 'import', tar, ref]);
    } catch (cliError) {
      throw new AggregateError([apiError, cliError], `could not import ${tar} as ${ref}`);
    }
    await docker.getImage(ref).inspect();
    return 'podman-cli';
  }
}

function splitRef(ref: string): { repo: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/')
    ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) }
    : { repo: ref, tag: 'latest' };
}

async function hasImage(docker: Docker, ref: string): Promise<boolean> {
  return docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

/** Builds and imports the busybox test image, replacing any earlier one with that name. */
export async function buildBusyboxImage(docker: Docker, ref = BUSYBOX_IMAGE): Promise<ImportMethod> {
  const tar = await busyboxRootfsTar();
  try {
    return await importImage(docker, tar, ref);
  } finally {
    await rm(join(tar, '..'), { recursive: true, force: true });
  }
}

/** The busybox test image, built only when the engine does not have it yet. */
export async function ensureBusyboxImage(docker: Docker, ref = BUSYBOX_IMAGE): Promise<string> {
  if (!(await hasImage(docker, ref))) await buildBusyboxImage(docker, ref);
  return ref;
}
