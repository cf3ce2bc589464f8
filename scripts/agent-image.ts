/**
 * Builds the agent container image (install/Containerfile) with Podman from local files only: a
 * root filesystem holding the pinned `node` package's binary, the glibc libraries it links (ldd)
 * and the agent bundle. No registry is reached (FROM scratch).
 *
 *   npm run build:agent-image [-- --tag localhost/fleet-agent:0.1.0] [--save dist]
 *
 * --save writes `podman save` of it as <dir>/agent-image-<arch>.tar, which the control plane serves
 * at /install/agent-image-<arch>.tar for install.sh on hosts that cannot run the service.
 *
 * A manifest list for both architectures (`podman manifest`), each image tagged <tag>-<arch>:
 *
 *   npm run build:agent-image -- --manifest --arch x86_64,aarch64 \
 *     --node-aarch64 node-v24.x.y-linux-arm64.tar.gz --sysroot-aarch64 /path/to/arm64/rootfs
 *
 * The image has no RUN step (FROM scratch, COPY only), so a foreign architecture builds without
 * emulation; it needs that architecture's files: its Node.js build (the official tarball, or npm
 * pack of node-linux-<arch>) and a root filesystem holding its glibc libraries (a Debian or Ubuntu
 * arm64 root, the Jetson's own). The libraries are found from the binary's ELF headers (readelf),
 * since ldd cannot run a foreign binary.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { rootCertificates } from 'node:tls';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { INSTALL_ARCHES, localArch, pinnedNode, type InstallArch } from '../functions/system/install.js';

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

/**
 * The image's CA store: Node.js's own roots, one file each in /etc/ssl/certs named by its subject's
 * hash (`openssl rehash`), where the agent's OpenSSL looks for the one a connection needs
 * (--use-openssl-ca, agent/node-flags.ts) instead of holding them all.
 */
export async function writeCaStore(root: string): Promise<void> {
  const dir = join(root, 'etc/ssl/certs');
  await mkdir(dir, { recursive: true });
  await Promise.all(rootCertificates.map((pem, i) => writeFile(join(dir, `node-root-${i}.pem`), `${pem}\n`)));
  await run('openssl', ['rehash', dir]);
}

/** Writes the image's root filesystem under `root`: node, its libraries, the bundle, a passwd, the CA store. */
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
  await writeCaStore(root);
}

/** install.sh's architecture names → the OCI platform's. */
const PLATFORM: Record<InstallArch, string> = { x86_64: 'linux/amd64', aarch64: 'linux/arm64' };

/** What a foreign architecture's image is made of. */
export interface ForeignInputs {
  /** Its Node.js archive (.tar.gz holding <top>/bin/node or package/bin/node). */
  nodeArchive: string;
  /** A root filesystem of that architecture holding the libraries node links. */
  sysroot: string;
}

/** One field of `readelf` output over `binary`: its NEEDED libraries, or its program interpreter. */
async function elf(binary: string): Promise<{ needed: string[]; interpreter?: string }> {
  const { stdout } = await run('readelf', ['-d', '-l', '-W', binary], { maxBuffer: 16 * 1024 * 1024 });
  const needed = [...stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
  const interpreter = /\[Requesting program interpreter: ([^\]]+)\]/.exec(stdout)?.[1];
  return { needed, ...(interpreter ? { interpreter } : {}) };
}

/** Where `name` is in `sysroot` (the library folders of Debian, Ubuntu and L4T on both architectures). */
async function findLibrary(sysroot: string, name: string): Promise<string> {
  for (const dir of [
    'lib/aarch64-linux-gnu',
    'usr/lib/aarch64-linux-gnu',
    'lib/x86_64-linux-gnu',
    'usr/lib/x86_64-linux-gnu',
    'lib64',
    'lib',
    'usr/lib',
  ]) {
    const path = join(dir, name);
    if ((await stat(join(sysroot, path)).catch(() => undefined))?.isFile()) return `/${path}`;
  }
  throw new Error(`${name} is not in ${sysroot}'s library folders`);
}

/** Copies `binary`'s libraries, found by their ELF headers in `sysroot`, to the same paths under `root`. */
export async function copyForeignLibraries(binary: string, sysroot: string, root: string): Promise<string[]> {
  const copied: string[] = [];
  const pending = [binary];
  const seen = new Set<string>();
  while (pending.length) {
    const { needed, interpreter } = await elf(pending.pop()!);
    const paths = [
      ...(interpreter ? [interpreter] : []),
      ...(await Promise.all(needed.map((n) => findLibrary(sysroot, n)))),
    ];
    for (const path of paths) {
      if (seen.has(path)) continue;
      seen.add(path);
      await mkdir(join(root, dirname(path)), { recursive: true });
      await copyFile(join(sysroot, path), join(root, path));
      copied.push(path);
      pending.push(join(sysroot, path));
    }
  }
  return copied.sort();
}

/** The root filesystem for a foreign architecture: its node, its libraries, the same bundle. */
async function foreignRootfs(root: string, inputs: ForeignInputs): Promise<void> {
  for (const dir of ['usr/local/bin', 'opt/fleet-agent', 'var/lib/fleet-agent', 'tmp', 'etc'])
    await mkdir(join(root, dir), { recursive: true });
  const unpacked = await mkdtemp(join(tmpdir(), 'fleet-agent-node-'));
  try {
    await run('tar', ['-xzf', inputs.nodeArchive, '-C', unpacked]);
    const entries = await readdir(unpacked, { recursive: true });
    const node = entries.find((e) => e === 'bin/node' || e.endsWith('/bin/node'));
    if (!node) throw new Error(`${inputs.nodeArchive} holds no bin/node`);
    await copyFile(join(unpacked, node), join(root, 'usr/local/bin/node'));
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
  await copyForeignLibraries(join(root, 'usr/local/bin/node'), inputs.sysroot, root);
  await run(
    process.execPath,
    ['--import', 'tsx', 'agent/build.ts', join(root, 'opt/fleet-agent/agent.mjs')],
    {
      cwd: REPO,
    },
  );
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
  await writeCaStore(root);
}

/**
 * Builds the image for each architecture as `<tag>-<arch>` (`--platform`), then the manifest list
 * `tag` over them (replacing one of that name). This machine's architecture comes from the pinned
 * package; another needs `foreign[arch]`. Returns `podman manifest inspect`'s platforms.
 */
export async function buildAgentManifest(options: {
  tag?: string;
  arches: InstallArch[];
  foreign?: Partial<Record<InstallArch, ForeignInputs>>;
}): Promise<{ images: string[]; platforms: string[] }> {
  const tag = options.tag ?? AGENT_IMAGE;
  for (const arch of options.arches)
    if (arch !== localArch() && !options.foreign?.[arch])
      throw new Error(
        `${arch} is not this machine's architecture: give its Node.js archive and a root filesystem with its libraries (--node-${arch}, --sysroot-${arch})`,
      );
  const images: string[] = [];
  for (const arch of options.arches) {
    const context = await mkdtemp(join(tmpdir(), 'fleet-agent-image-'));
    try {
      if (arch === localArch()) await agentRootfs(join(context, 'rootfs'));
      else {
        await foreignRootfs(join(context, 'rootfs'), options.foreign![arch]!);
      }
      const image = `${tag}-${arch}`;
      await run(
        'podman',
        [
          'build',
          '--quiet',
          '--platform',
          PLATFORM[arch],
          '-f',
          join(REPO, 'install/Containerfile'),
          '-t',
          image,
          context,
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      images.push(image);
    } finally {
      await rm(context, { recursive: true, force: true });
    }
  }
  await run('podman', ['manifest', 'rm', tag]).catch(() => undefined);
  await run('podman', ['manifest', 'create', tag]);
  for (const image of images) await run('podman', ['manifest', 'add', tag, `containers-storage:${image}`]);
  const { stdout } = await run('podman', ['manifest', 'inspect', tag]);
  const list = JSON.parse(stdout) as { manifests: { platform: { os: string; architecture: string } }[] };
  return { images, platforms: list.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`) };
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
  const { values } = parseArgs({
    options: {
      tag: { type: 'string' },
      save: { type: 'string' },
      manifest: { type: 'boolean', default: false },
      arch: { type: 'string' },
      ...Object.fromEntries(
        INSTALL_ARCHES.flatMap((a) => [
          [`node-${a}`, { type: 'string' as const }],
          [`sysroot-${a}`, { type: 'string' as const }],
        ]),
      ),
    },
  });
  if (values.manifest) {
    const arches = (values.arch ?? localArch() ?? '').split(',').filter(Boolean) as InstallArch[];
    for (const a of arches)
      if (!INSTALL_ARCHES.includes(a))
        throw new Error(`--arch: ${a} is not one of ${INSTALL_ARCHES.join(', ')}`);
    const foreign: Partial<Record<InstallArch, ForeignInputs>> = {};
    for (const a of INSTALL_ARCHES) {
      const node = values[`node-${a}` as keyof typeof values] as string | undefined;
      const sysroot = values[`sysroot-${a}` as keyof typeof values] as string | undefined;
      if (node && sysroot) foreign[a] = { nodeArchive: resolve(node), sysroot: resolve(sysroot) };
    }
    const { images, platforms } = await buildAgentManifest({
      ...(values.tag ? { tag: values.tag } : {}),
      arches,
      foreign,
    });
    console.log(
      `built ${images.join(', ')}; manifest list ${values.tag ?? AGENT_IMAGE}: ${platforms.join(', ')}`,
    );
  } else {
    const saved = await buildAgentImage({
      ...(values.tag ? { tag: values.tag } : {}),
      ...(values.save ? { save: values.save } : {}),
    });
    console.log(`built ${values.tag ?? AGENT_IMAGE}${saved ? `; saved ${saved}` : ''}`);
  }
}
