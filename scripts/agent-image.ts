/**
 * Builds the agent container image (install/Containerfile) with Podman from local files only: a
 * root filesystem holding the pinned `node` package's binary, the glibc libraries it links (ldd)
 * and the agent bundle. No registry is reached (FROM scratch).
 *
 *   npm run build:agent-image [-- --tag localhost/fleet-agent:0.1.0] [--save dist]
 *
 * --save writes `podman save` of it as <dir>/agent-image-<arch>.tar, which the control plane serves
 * at /install/agent-image-<arch>.tar for install.sh on hosts that cannot run the service.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { localArch, pinnedNode } from '../functions/system/install.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
export const AGENT_IMAGE = 'localhost/fleet-agent:latest';

/** The shared libraries `binary` loads (and the loader), as ldd lists them. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  return [...stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/** Copies each library of `binary` to the same path under `root`, so it runs there (chroot, image). */
export async function copyLibraries(binary: string, root: string): Promise<void> {
  for (const lib of await sharedLibraries(binary)) {
    await mkdir(join(root, dirname(lib)), { recursive: true });
    await copyFile(lib, join(root, lib));
  }
}

/** Writes the image's root filesystem under `root`: node, its libraries, the bundle, a passwd. */
export async function agentRootfs(root: string): Promise<void> {
  const node = pinnedNode();
  if (!node) throw new Error('the pinned node package is not installed (npm ci)');
  for (const dir of ['usr/local/bin', 'opt/fleet-agent', 'var/lib/fleet-agent', 'tmp', 'etc'])
    await mkdir(join(root, dir), { recursive: true });
  await copyFile(node.binary, join(root, 'usr/local/bin/node'));
  await copyLibraries(node.binary, root);
  await run(
    process.execPath,
    ['--import', 'tsx', 'agent/build.ts', join(root, 'opt/fleet-agent/agent.mjs')],
    {
      cwd: REPO,
    },
  );
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
}

/** Builds the image as `tag` (and `save`s it for install.sh when asked); returns the archive path if saved. */
export async function buildAgentImage(
  options: { tag?: string; save?: string } = {},
): Promise<string | undefined> {
  const tag = options.tag ?? AGENT_IMAGE;
  const context = await mkdtemp(join(tmpdir(), 'fleet-agent-image-'));
  try {
    await agentRootfs(join(context, 'rootfs'));
    await run('podman', ['build', '--quiet', '-f', join(REPO, 'install/Containerfile'), '-t', tag, context], {
      maxBuffer: 16 * 1024 * 1024,
    });
    if (!options.save) return undefined;
    await mkdir(options.save, { recursive: true });
    const out = join(resolve(options.save), `agent-image-${localArch()}.tar`);
    await rm(out, { force: true });
    await run('podman', ['save', '--format', 'docker-archive', '-o', out, tag]);
    return out;
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { tag: { type: 'string' }, save: { type: 'string' } } });
  const saved = await buildAgentImage({
    ...(values.tag ? { tag: values.tag } : {}),
    ...(values.save ? { save: values.save } : {}),
  });
  console.log(`built ${values.tag ?? AGENT_IMAGE}${saved ? `; saved ${saved}` : ''}`);
}
