import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * install.sh's runtime download where the control plane has none for the host's architecture (an
 * aarch64 Jetson, typically): the official Node.js build from a mirror, checked against the
 * mirror's SHASUMS256.txt. Everything is served on loopback: the control plane's /install/ files
 * and a mirror holding a stand-in build (a bin/node that prints its version) for this machine's
 * architecture. The script runs as root into a scratch root filesystem (--root), so nothing is
 * started and nothing outside that folder changes.
 */
const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../install/install.sh', import.meta.url));
const VERSION = '24.99.1';
const NODE_ARCH = arch() === 'arm64' ? 'arm64' : 'x64';
const INSTALL_ARCH = arch() === 'arm64' ? 'aarch64' : 'x86_64';
const TARBALL = `node-v${VERSION}-linux-${NODE_ARCH}.tar.gz`;
const FAKE_NODE = `#!/bin/sh\necho v${VERSION}\n`;

let dir: string;
let tarball: Buffer;
let http: HttpServer;
let base: string;
let engine: Server;
let engineSocket: string;
/** What the loopback server answers, per path; everything else is a 404. Changed per test. */
let files = new Map<string, Buffer | string>();
const requested: string[] = [];

async function scratchRoot(): Promise<string> {
  const root = await mkdtemp(join(dir, 'root-'));
  await chmod(root, 0o755);
  await mkdir(join(root, 'etc'));
  await mkdir(join(root, 'run'));
  const accounts: Record<string, string> = {
    passwd: 'root:x:0:0:root:/root:/bin/sh\n',
    group: 'root:x:0:\n',
    shadow: 'root:*:19000:0:99999:7:::\n',
    gshadow: 'root:*::\n',
  };
  for (const [name, text] of Object.entries(accounts))
    await writeFile(join(root, 'etc', name), text, { mode: name.includes('shadow') ? 0o600 : 0o644 });
  await mkdir(join(root, 'var/run'), { recursive: true });
  await run('ln', ['-s', engineSocket, join(root, 'var/run/docker.sock')]);
  return root;
}

function install(root: string, extra: string[]) {
  return new Promise<{ code: number; out: string }>((resolve) => {
    const child = spawn(
      'sh',
      [SCRIPT, '--url', base, '--token', 'FLEETJT-test', '--name', 'mirror-node', '--root', root, ...extra],
      {
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FLEET_NODE_MIRROR: `${base}/unused-mirror` },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('install.sh runs as root: run this suite as root');
  dir = await mkdtemp(join(tmpdir(), 'fleet-mirror-'));
  await chmod(dir, 0o755);
  // The official layout: node-v<version>-linux-<arch>/bin/node, with other files beside it.
  const top = `node-v${VERSION}-linux-${NODE_ARCH}`;
  await mkdir(join(dir, 'build', top, 'bin'), { recursive: true });
  await writeFile(join(dir, 'build', top, 'bin', 'node'), FAKE_NODE, { mode: 0o755 });
  await writeFile(join(dir, 'build', top, 'LICENSE'), 'MIT\n');
  await run('tar', ['-C', join(dir, 'build'), '-czf', join(dir, TARBALL), top]);
  tarball = await readFile(join(dir, TARBALL));

  http = createHttpServer((req, res) => {
    requested.push(req.url!);
    const body = files.get(req.url!);
    if (body === undefined) {
      res.writeHead(404).end('not here\n');
      return;
    }
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;

  // The script only looks at the engine socket (that it exists, its group); nothing connects in --root mode.
  engineSocket = join(dir, 'engine.sock');
  engine = createServer((c) => c.destroy());
  engine.listen(engineSocket);
  await once(engine, 'listening');
  await chown(engineSocket, 0, 4242);
  await chmod(engineSocket, 0o660);
});

afterAll(async () => {
  http?.close();
  engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The control plane's files without a runtime, and a mirror at /dist with `shasums`. */
function serve(shasums: string, mirror = '/dist') {
  files = new Map<string, Buffer | string>([
    ['/install/agent.mjs', '// the agent bundle\n'],
    ['/install/agent-ssh2.cjs', '// ssh2, bundled apart\n'],
    [`${mirror}/v${VERSION}/${TARBALL}`, tarball],
    [`${mirror}/v${VERSION}/SHASUMS256.txt`, shasums],
  ]);
  requested.length = 0;
}

const listing = (hash: string) =>
  [
    `${'0'.repeat(64)}  node-v${VERSION}-darwin-arm64.tar.gz`,
    `${hash}  ${TARBALL}`,
    `${'1'.repeat(64)}  node-v${VERSION}-linux-${NODE_ARCH}.tar.xz`,
  ].join('\n') + '\n';

describe('install.sh: the Node.js runtime from a mirror', () => {
  it('downloads the official build for this architecture when the control plane has none, and installs it once its checksum matches', async () => {
    serve(listing(sha256(tarball)));
    const root = await scratchRoot();
    const { code, out } = await install(root, [
      '--node-mirror',
      `${base}/dist/`,
      '--node-version',
      `v${VERSION}`,
    ]);
    expect(code, out).toBe(0);
    expect(requested).toEqual([
      '/install/agent.mjs',
      '/install/agent-ssh2.cjs',
      `/install/node-${INSTALL_ARCH}.tar.gz`,
      `/dist/v${VERSION}/SHASUMS256.txt`,
      `/dist/v${VERSION}/${TARBALL}`,
    ]);
    expect(out).toContain(`${TARBALL} matches SHASUMS256.txt`);
    expect(await readFile(join(root, 'opt/fleet-agent/bin/node'), 'utf8')).toBe(FAKE_NODE);
    const unit = await readFile(join(root, 'etc/systemd/system/fleet-agent.service'), 'utf8');
    expect(unit).toContain('ExecStart=/opt/fleet-agent/bin/node');
  });

  it('takes the mirror from FLEET_NODE_MIRROR when no flag names one', async () => {
    serve(listing(sha256(tarball)), '/unused-mirror');
    const root = await scratchRoot();
    const { code, out } = await install(root, ['--node-version', VERSION]);
    expect(code, out).toBe(0);
    expect(requested).toContain(`/unused-mirror/v${VERSION}/${TARBALL}`);
    expect(await readFile(join(root, 'opt/fleet-agent/bin/node'), 'utf8')).toBe(FAKE_NODE);
  });

  it('refuses a download that does not match SHASUMS256.txt and installs nothing', async () => {
    serve(listing('f'.repeat(64)));
    const root = await scratchRoot();
    const { code, out } = await install(root, ['--node-mirror', `${base}/dist`, '--node-version', VERSION]);
    expect(code).toBe(1);
    expect(out).toContain(`${TARBALL} does not match its SHA-256 in SHASUMS256.txt`);
    expect(out).toContain(`got ${sha256(tarball)}`);
    await expect(readFile(join(root, 'opt/fleet-agent/bin/node'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(root, 'etc/systemd/system/fleet-agent.service'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses a build the mirror does not list', async () => {
    serve(`${sha256(tarball)}  node-v${VERSION}-linux-ppc64le.tar.gz\n`);
    const root = await scratchRoot();
    const { code, out } = await install(root, ['--node-mirror', `${base}/dist`, '--node-version', VERSION]);
    expect(code).toBe(1);
    expect(out).toContain(`SHASUMS256.txt does not list ${TARBALL}`);
    expect(requested).not.toContain(`/dist/v${VERSION}/${TARBALL}`);
  });

  it("uses the control plane's runtime when it has one, and asks no mirror", async () => {
    serve(listing(sha256(tarball)));
    files.set(`/install/node-${INSTALL_ARCH}.tar.gz`, tarball);
    const root = await scratchRoot();
    const { code, out } = await install(root, ['--node-mirror', `${base}/dist`, '--node-version', VERSION]);
    expect(code, out).toBe(0);
    expect(requested).toEqual([
      '/install/agent.mjs',
      '/install/agent-ssh2.cjs',
      `/install/node-${INSTALL_ARCH}.tar.gz`,
    ]);
    expect(await readFile(join(root, 'opt/fleet-agent/bin/node'), 'utf8')).toBe(FAKE_NODE);
  });

  it('asks for a version when neither the flag nor the serving control plane gives one', async () => {
    serve(listing(sha256(tarball)));
    const root = await scratchRoot();
    const { code, out } = await install(root, ['--node-mirror', `${base}/dist`]);
    expect(code).toBe(1);
    expect(out).toContain(`the control plane has no Node.js runtime for ${INSTALL_ARCH}: name the version`);
  });

  it('refuses a mirror that is not an http(s) URL before downloading anything', async () => {
    serve(listing(sha256(tarball)));
    const root = await scratchRoot();
    const { code, out } = await install(root, ['--node-mirror', 'file:///etc', '--node-version', VERSION]);
    expect(code).toBe(1);
    expect(out).toContain('--node-mirror must be an http(s) URL');
    expect(requested).toEqual([]);
  });
});
