import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  capture,
  engineSocketAt,
  ENGINE_SOCKET,
  startInstallServer,
  useCiContainersConf,
} from '../harness/install-host.js';
import { AGENT_IMAGE, buildAgentImage, copyLibraries } from '../../scripts/agent-image.js';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';

/**
 * The one-line install against `npm start` in a child process: the line the join token answers
 * with, piped to sh as root. systemd does not run on these machines (no init), so the service is
 * checked up to its unit: the script installs into a scratch root filesystem (--root), the unit is
 * verified by systemd-analyze, and its ExecStart runs chrooted there as the unit's user, groups and
 * environment file say, until the node is online. The container path builds the agent image with
 * Podman and lets the script run it with the engine socket mounted.
 */
const run = promisify(execFile);
const API_KEY = 'install-test-key-0123456789abcdef';
/** The engine socket's group in the scratch root: no group on this machine has it. */
const ENGINE_GID = 4242;
useCiContainersConf();
const SCRIPT_ENV = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  DOCKER_HOST: `unix://${ENGINE_SOCKET}`,
  ...(process.env.CONTAINERS_CONF ? { CONTAINERS_CONF: process.env.CONTAINERS_CONF } : {}),
};

let dir: string;
let assets: string;
let server: { child: ChildProcess; url: string };
const docker = new Docker({ socketPath: ENGINE_SOCKET });

async function api(path: string, init: RequestInit = {}) {
  const res = await fetch(server.url + path, {
    ...init,
    headers: { authorization: `Bearer ${API_KEY}`, ...init.headers },
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

const joinToken = async (name?: string) =>
  (await api(`/api/swarm/join-token${name ? `?name=${name}` : ''}`)).body as {
    token: string;
    id: string;
    install_command: string;
  };

async function nodeNamed(name: string) {
  const { nodes } = (await api('/api/nodes/')).body as {
    nodes: { id: string; name: string; status: string }[];
  };
  return nodes.find((n) => n.name === name);
}

async function tokenUses(id: string) {
  const { tokens } = (await api('/api/swarm/join-tokens')).body as { tokens: { id: string; uses: number }[] };
  return tokens.find((t) => t.id === id)?.uses;
}

/** Runs a shell line as root; resolves with its exit code and output whatever the code. */
const sh = (line: string, env: Record<string, string> = SCRIPT_ENV) => capture('sh', ['-c', line], env);

/** The pasted line, as a root shell runs it (no sudo needed), with extra flags for the test. */
const asRoot = (installCommand: string, extra: string) =>
  `${installCommand.replace('| sudo sh', '| sh')} ${extra}`;

/** Every path under `root`, relative. */
async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

/** A minimal root filesystem as a Debian host has it: the account files and their backups. */
async function scratchRoot(): Promise<string> {
  const root = await mkdtemp(join(dir, 'root-'));
  // As / is: every user may traverse it (mkdtemp makes 0700).
  await chmod(root, 0o755);
  await mkdir(join(root, 'etc'));
  await mkdir(join(root, 'run'));
  await mkdir(join(root, 'proc'));
  const files: Record<string, string> = {
    passwd: 'root:x:0:0:root:/root:/bin/sh\n',
    group: 'root:x:0:\n',
    shadow: 'root:*:19000:0:99999:7:::\n',
    gshadow: 'root:*::\n',
  };
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(root, 'etc', name), text, { mode: name.includes('shadow') ? 0o600 : 0o644 });
    await writeFile(join(root, 'etc', `${name}-`), text, { mode: 0o600 });
  }
  await writeFile(join(root, 'etc', '.pwd.lock'), '', { mode: 0o600 });
  return root;
}

const accountFiles = async (root: string) =>
  Promise.all(['passwd', 'group', 'shadow', 'gshadow'].map((f) => readFile(join(root, 'etc', f), 'utf8')));

/** `Key=value` lines of a unit or environment file. */
function keyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !line.startsWith('#') && !line.startsWith('['))
      out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

const idOf = (file: string, name: string) =>
  Number(
    file
      .split('\n')
      .find((l) => l.startsWith(`${name}:`))!
      .split(':')[2],
  );

/**
 * Starts the unit's ExecStart as systemd would: chrooted into `root`, as its User and Group with
 * its SupplementaryGroups, with only its EnvironmentFile's variables. /proc is mounted meanwhile.
 */
async function startAsUnit(root: string): Promise<{
  child: ChildProcess;
  running: Promise<{ nodeId: string }>;
  log: () => string;
  stop: () => Promise<void>;
}> {
  const unit = keyValues(await readFile(join(root, 'etc/systemd/system/fleet-agent.service'), 'utf8'));
  const env = Object.fromEntries(keyValues(await readFile(join(root, unit.get('EnvironmentFile')!), 'utf8')));
  const [passwd, group] = await Promise.all(
    ['passwd', 'group'].map((f) => readFile(join(root, 'etc', f), 'utf8')),
  );
  const uid = idOf(passwd!, unit.get('User')!);
  const gid = idOf(group!, unit.get('Group')!);
  const extra = (unit.get('SupplementaryGroups') ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((g) => idOf(group!, g));
  await run('mount', ['-t', 'proc', 'proc', join(root, 'proc')]);
  const child = spawn(
    '/usr/sbin/chroot',
    [
      `--userspec=${uid}:${gid}`,
      `--groups=${[gid, ...extra].join(',')}`,
      root,
      ...unit.get('ExecStart')!.split(' '),
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const exited = once(child, 'exit');
  // The agent's own line once it registered and runs: {"message":"agent running","nodeId":…}.
  const running = new Promise<{ nodeId: string }>((resolve, reject) => {
    const onData = (d: Buffer) => {
      log += d.toString();
      const line = log.split('\n').find((l) => l.includes('"message":"agent running"'));
      if (line) resolve(JSON.parse(line) as { nodeId: string });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`the agent exited before it ran:\n${log}`)));
  });
  return {
    child,
    running,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      await run('umount', [join(root, 'proc')]);
      expect(code, log).toBe(0);
    },
  };
}

/** Runs `check` while the unit's ExecStart runs; the agent's output comes with any failure. */
async function whileRunningAsUnit(
  root: string,
  check: (running: { nodeId: string }) => Promise<void>,
): Promise<void> {
  const agent = await startAsUnit(root);
  try {
    await check(await agent.running);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nagent output:\n${agent.log()}`, { cause: error });
  } finally {
    await agent.stop();
  }
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the install suite runs install.sh as root: run it as root');
  dir = await mkdtemp(join(tmpdir(), 'fleet-install-'));
  await chmod(dir, 0o755);
  assets = join(dir, 'assets');
  await mkdir(assets);
  await run(process.execPath, ['--import', 'tsx', 'agent/build.ts', join(assets, 'agent.mjs')]);
  server = await startInstallServer(dir, assets, API_KEY);
}, 180_000);

afterAll(async () => {
  server?.child.kill('SIGTERM');
  if (server) await once(server.child, 'exit');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('GET /install.sh and what it downloads', () => {
  it('serves the script with this control plane as its default URL, and it is shellcheck-clean', async () => {
    const res = await fetch(`${server.url}/install.sh`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/x-shellscript; charset=utf-8');
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toContain(`FLEET_URL_DEFAULT='${server.url}'`);
    await writeFile(join(dir, 'install.sh'), text);
    const lint = await run('shellcheck', ['-s', 'sh', join(dir, 'install.sh')]).then(
      () => ({ code: 0, out: '' }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    expect(lint).toEqual({ code: 0, out: '' });
  });

  it('a hostile Host header does not end up inside the script', async () => {
    const { request } = await import('node:http');
    const text = await new Promise<string>((resolve, reject) => {
      const u = new URL(server.url);
      request(
        { host: u.hostname, port: u.port, path: '/install.sh', headers: { host: "x';rm -rf /;'" } },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        },
      )
        .on('error', reject)
        .end();
    });
    expect(text).toContain("FLEET_URL_DEFAULT='@FLEET_URL@'");
    expect(text).not.toContain('rm -rf /;');
  });

  it("serves the agent bundle and this machine's runtime; a missing architecture or unknown file is a clear 4xx", async () => {
    const bundle = await fetch(`${server.url}/install/agent.mjs`);
    expect(bundle.status).toBe(200);
    expect(Buffer.from(await bundle.arrayBuffer()).equals(await readFile(join(assets, 'agent.mjs')))).toBe(
      true,
    );
    // ssh2, bundled apart (host.install loads it): served beside the bundle.
    const ssh2 = await fetch(`${server.url}/install/agent-ssh2.cjs`);
    expect(ssh2.status).toBe(200);
    expect(Buffer.from(await ssh2.arrayBuffer()).equals(await readFile(join(assets, 'agent-ssh2.cjs')))).toBe(
      true,
    );

    const local = process.arch === 'x64' ? 'x86_64' : 'aarch64';
    const other = local === 'x86_64' ? 'aarch64' : 'x86_64';
    const runtime = await fetch(`${server.url}/install/node-${local}.tar.gz`);
    expect(runtime.status).toBe(200);
    expect(runtime.headers.get('content-type')).toBe('application/gzip');
    await writeFile(join(dir, 'node.tar.gz'), Buffer.from(await runtime.arrayBuffer()));
    const { stdout } = await run('tar', ['-tzf', join(dir, 'node.tar.gz')]);
    expect(stdout.trim().split('\n')).toEqual(['bin/node']);

    const missing = await fetch(`${server.url}/install/node-${other}.tar.gz`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { detail: string }).detail).toContain(`node-${other}.tar.gz`);
    const unknown = await fetch(`${server.url}/install/passwd`);
    expect(unknown.status).toBe(422);
  });

  it("the join token answers with the line to paste; a bad name is a 400 (the fleet routes' status)", async () => {
    const t = await joinToken('gpu-01');
    expect(t.install_command).toBe(
      `curl -fsSL ${server.url}/install.sh | sudo sh -s -- --token '${t.token}' --name 'gpu-01'`,
    );
    const bad = await api('/api/swarm/join-token?name=bad%20name');
    expect(bad.status).toBe(400);
    expect(bad.body).toHaveProperty('detail');
    expect(JSON.stringify(bad.body.detail)).toContain('name');
  });
});

describe('install.sh as root into a scratch root (systemd service)', () => {
  let root: string;
  let proxy: Server;
  let before: string[];
  let accountsBefore: string[];
  const name = 'installed-node-1';

  beforeAll(async () => {
    root = await scratchRoot();
    proxy = await engineSocketAt(join(root, 'run/engine.sock'), ENGINE_GID);
    // The host's C library, which the scratch root stands for (the script brings node, not libc).
    const node = join(dir, 'probe-node');
    await copyFile(process.execPath, node);
    await copyLibraries(node, root);
    before = await tree(root);
    accountsBefore = await accountFiles(root);
  });
  afterAll(async () => {
    proxy?.close();
    await run('umount', [join(root, 'proc')]).catch(() => undefined);
  });

  it('installs from the pasted line; the unit verifies; its ExecStart brings the node online through the join token', async () => {
    const t = await joinToken(name);
    const first = await sh(asRoot(t.install_command, `--root ${root} --engine-socket /run/engine.sock`));
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain('installed into');

    const unitText = await readFile(join(root, 'etc/systemd/system/fleet-agent.service'), 'utf8');
    const unit = keyValues(unitText);
    expect(unit.get('User')).toBe('fleet-agent');
    expect(unit.get('SupplementaryGroups')).toBe('fleet-engine');
    expect(unit.get('ExecStart')).toBe(
      ['/opt/fleet-agent/bin/node', ...AGENT_NODE_FLAGS, '/opt/fleet-agent/agent.mjs'].join(' '),
    );
    expect(await readFile(join(root, 'opt/fleet-agent/agent-ssh2.cjs'))).toEqual(
      await readFile(join(assets, 'agent-ssh2.cjs')),
    );
    // The scratch root has no CA store where OpenSSL looks (--use-openssl-ca): the agent gets
    // Node.js's roots beside it, named in the unit.
    expect(unitText.split('\n')).toContain('Environment=SSL_CERT_FILE=/opt/fleet-agent/ca.pem');
    const roots = await readFile(join(root, 'opt/fleet-agent/ca.pem'), 'utf8');
    expect(roots.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(rootCertificates.length);
    expect(unit.get('Restart')).toBe('on-failure');
    expect(unit.get('StandardOutput')).toBe('journal');
    expect(unit.get('WantedBy')).toBe('multi-user.target');
    // The scratch root holds no systemd units (sysinit.target and the rest): the unit itself is verified.
    const verify = await run('systemd-analyze', [
      'verify',
      `--root=${root}`,
      '--recursive-errors=no',
      '/etc/systemd/system/fleet-agent.service',
    ]).then(
      (r) => ({ code: 0, out: r.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, out: e.stderr }),
    );
    expect(verify).toEqual({ code: 0, out: '' });

    const env = keyValues(await readFile(join(root, 'etc/fleet-agent/agent.env'), 'utf8'));
    expect(Object.fromEntries(env)).toEqual({
      FLEET_URL: server.url,
      FLEET_NODE_NAME: name,
      FLEET_JOIN_TOKEN: t.token,
      FLEET_STATE_DIR: '/var/lib/fleet-agent',
      DOCKER_HOST: 'unix:///run/engine.sock',
    });
    expect((await stat(join(root, 'etc/fleet-agent/agent.env'))).mode & 0o777).toBe(0o600);
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    const uid = idOf(passwd, 'fleet-agent');
    const state = await stat(join(root, 'var/lib/fleet-agent'));
    expect([state.uid, state.mode & 0o777]).toEqual([uid, 0o700]);
    const group = await readFile(join(root, 'etc/group'), 'utf8');
    expect(group).toContain(`fleet-engine:x:${ENGINE_GID}:fleet-agent`);

    await whileRunningAsUnit(root, async ({ nodeId }) => {
      expect(await nodeNamed(name)).toMatchObject({ id: nodeId, status: 'online' });
    });
    expect(await tokenUses(t.id)).toBe(1);
    // The credential the node got is in its state folder, written as the agent's user.
    const written = await readdir(join(root, 'var/lib/fleet-agent'));
    expect(written.length).toBeGreaterThan(0);
    for (const f of written) expect((await stat(join(root, 'var/lib/fleet-agent', f))).uid).toBe(uid);
  }, 120_000);

  it('a second run upgrades in place: same user, same settings, the node comes back with its own credential', async () => {
    const nodeBefore = await nodeNamed(name);
    const usesBefore = (
      (await api('/api/swarm/join-tokens')).body as { tokens: { uses: number }[] }
    ).tokens.reduce((n, t) => n + t.uses, 0);
    const envBefore = await readFile(join(root, 'etc/fleet-agent/agent.env'), 'utf8');
    // A newer agent on the control plane: the upgrade must install it.
    const newer = `${await readFile(join(assets, 'agent.mjs'), 'utf8')}\n// a newer build\n`;
    await writeFile(join(assets, 'agent.mjs'), newer);
    // And a runtime from the assets folder in the layout `npm pack node-linux-<arch>` gives
    // (package/bin/node), as an operator provides the architecture this machine cannot serve.
    const arch = process.arch === 'x64' ? 'x86_64' : 'aarch64';
    const pack = join(dir, 'npm-pack');
    await mkdir(join(pack, 'package/bin'), { recursive: true });
    await copyFile(process.execPath, join(pack, 'package/bin/node'));
    await chmod(join(pack, 'package/bin/node'), 0o755);
    await run('sh', [
      '-c',
      `tar -C ${pack} -cf - package | gzip -1 > ${join(assets, `node-${arch}.tar.gz`)}`,
    ]);
    const second = await sh(
      `curl -fsSL ${server.url}/install.sh | sh -s -- --root ${root} --engine-socket /run/engine.sock`,
    );
    expect(second.code, second.out).toBe(0);
    expect(second.out).toContain('upgrading the agent in place');
    expect(await readFile(join(root, 'etc/fleet-agent/agent.env'), 'utf8')).toBe(envBefore);
    expect(await readFile(join(root, 'opt/fleet-agent/agent.mjs'), 'utf8')).toBe(newer);
    const served = await fetch(`${server.url}/install/node-${arch}.tar.gz`);
    expect(
      Buffer.from(await served.arrayBuffer()).equals(await readFile(join(assets, `node-${arch}.tar.gz`))),
    ).toBe(true);
    expect((await stat(join(root, 'opt/fleet-agent/bin/node'))).size).toBe(
      (await stat(process.execPath)).size,
    );
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    expect(passwd.split('\n').filter((l) => l.startsWith('fleet-agent:'))).toHaveLength(1);
    const manifest = await readFile(join(root, 'opt/fleet-agent/installed'), 'utf8');
    expect(manifest).toContain('user_created=1');
    expect(manifest).toContain('group_created=fleet-engine');

    await whileRunningAsUnit(root, async ({ nodeId }) => {
      expect(nodeId).toBe(nodeBefore!.id);
      expect(await nodeNamed(name)).toMatchObject({ id: nodeBefore!.id, status: 'online' });
    });
    // Registered again with its own credential, not a second use of the join token.
    const { tokens } = (await api('/api/swarm/join-tokens')).body as { tokens: { uses: number }[] };
    expect(tokens.reduce((n, t) => n + t.uses, 0)).toBe(usesBefore);
    const { nodes } = (await api('/api/nodes/')).body as { nodes: { name: string }[] };
    expect(nodes.filter((n) => n.name === name)).toHaveLength(1);
  }, 120_000);

  it('--uninstall leaves the root as it was', async () => {
    const out = await sh(`curl -fsSL ${server.url}/install.sh | sh -s -- --uninstall --root ${root}`);
    expect(out.code, out.out).toBe(0);
    expect(await tree(root)).toEqual(before);
    expect(await accountFiles(root)).toEqual(accountsBefore);
  });
});

describe('the agent container image (hosts without systemd or with an old glibc)', () => {
  let root: string;
  let proxy: Server;
  let before: string[];
  const name = 'installed-node-image';

  beforeAll(async () => {
    const saved = await buildAgentImage({ save: assets });
    expect(saved).toBe(join(assets, `agent-image-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.tar`));
    root = await scratchRoot();
    proxy = await engineSocketAt(join(root, 'run/engine.sock'), ENGINE_GID);
    before = await tree(root);
  }, 180_000);
  afterAll(async () => {
    proxy?.close();
    await docker
      .getContainer('fleet-agent')
      .remove({ force: true })
      .catch(() => undefined);
  });

  it('on a host with glibc 2.27 (JetPack 4) install.sh says so, loads the image from the control plane and runs it with the socket mounted, --restart=always', async () => {
    // The host's C library as JetPack 4 reports it: a getconf first on PATH that answers 2.27.
    const shim = join(dir, 'glibc-2.27');
    await mkdir(shim, { recursive: true });
    await writeFile(join(shim, 'getconf'), '#!/bin/sh\necho "glibc 2.27"\n', { mode: 0o755 });
    const t = await joinToken(name);
    const res = await sh(asRoot(t.install_command, `--root ${root} --engine-socket /run/engine.sock`), {
      ...SCRIPT_ENV,
      PATH: `${shim}:${SCRIPT_ENV.PATH}`,
    });
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain(
      "this host's C library (glibc 2.27) is older than the 2.28 Node.js 24 needs: running the agent container image instead",
    );
    expect(await readFile(join(root, 'opt/fleet-agent/installed'), 'utf8')).toContain('mode=container');

    const info = await docker.getContainer('fleet-agent').inspect();
    expect(info.Config.Image).toBe(AGENT_IMAGE);
    expect(info.HostConfig.RestartPolicy?.Name).toBe('always');
    expect(info.HostConfig.NetworkMode).toBe('host');
    expect(info.Mounts.map((m) => [m.Source, m.Destination])).toContainEqual([
      join(root, 'run/engine.sock'),
      '/var/run/docker.sock',
    ]);
    await expect
      .poll(() => nodeNamed(name), { timeout: 60_000, interval: 250 })
      .toMatchObject({ status: 'online' });
    expect(await tokenUses(t.id)).toBe(1);
  }, 180_000);

  it('--uninstall removes the container, its state volume, the image and the files', async () => {
    const out = await sh(`curl -fsSL ${server.url}/install.sh | sh -s -- --uninstall --root ${root}`);
    expect(out.code, out.out).toBe(0);
    const gone = await docker
      .getContainer('fleet-agent')
      .inspect()
      .then(
        () => false,
        (e: { statusCode?: number }) => e.statusCode === 404,
      );
    expect(gone).toBe(true);
    const images = await docker.listImages({ filters: { reference: [AGENT_IMAGE] } });
    expect(images).toHaveLength(0);
    const { Volumes } = await docker.listVolumes({ filters: { name: ['fleet-agent-state'] } });
    expect(Volumes ?? []).toHaveLength(0);
    expect(await tree(root)).toEqual(before);
  }, 60_000);
});

describe("the agent's runtime check", () => {
  const bundle = () => join(assets, 'agent.mjs');

  it('on Node.js 24 the bundle runs', async () => {
    const { stdout } = await run(process.execPath, [bundle(), '--version']);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('on an older Node.js it exits 1 with one clear line before anything else runs', async () => {
    // A runtime reporting itself as 20: the check reads process.version, as on a real Node.js 20.
    const older = 'data:text/javascript,Object.defineProperty(process,"version",{value:"v20.11.1"})';
    const res = await run(process.execPath, ['--import', older, bundle(), '--version']).then(
      () => ({ code: 0, stderr: '', stdout: '' }),
      (e: { code: number; stderr: string; stdout: string }) => e,
    );
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toEqual([
      `fleet-agent: needs Node.js 24 or later, but ${process.execPath} is v20.11.1; install with the control plane's install.sh (it brings its own runtime) or run the agent container image`,
    ]);
  });
});
