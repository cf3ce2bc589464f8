import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../harness/free-port.js';
import {
  capture,
  engineSocketAt,
  ENGINE_SOCKET,
  startInstallServer,
  useCiContainersConf,
} from '../harness/install-host.js';
import { describeWith, inCi, type ServiceStatus } from '../harness/services.js';
import { AgentProcess, buildAgentBundle, eventually } from './harness.js';

/**
 * The one-line install under a real systemd: a Podman container boots /sbin/init (this machine's own
 * systemd, its /usr mounted read-only, a copy of its /etc without the services it enables), on the
 * host's network so it reaches `npm start` on loopback. Inside it the pasted line installs the
 * agent; systemd starts the unit, restarts it after a SIGKILL (Restart=on-failure), stops it
 * cleanly, and `--uninstall` removes it. No image is pulled: nothing comes from a registry.
 */
const run = promisify(execFile);
const API_KEY = 'install-systemd-key-0123456789abcdef';
/** The engine socket's group inside the container: no group there has it, install.sh adds one. */
const ENGINE_GID = 4243;
useCiContainersConf();

function systemdInPodman(): ServiceStatus {
  const missing =
    process.getuid?.() !== 0
      ? 'not root'
      : !existsSync('/lib/systemd/systemd')
        ? 'no /lib/systemd/systemd (Debian package systemd)'
        : !['/usr/bin/podman', '/bin/podman'].some(existsSync)
          ? 'no podman'
          : !existsSync(ENGINE_SOCKET)
            ? `no engine socket at ${ENGINE_SOCKET}`
            : '';
  if (!missing) return { available: true, reason: '' };
  if (inCi) throw new Error(`CI=true and systemd cannot run in Podman here: ${missing}`);
  return { available: false, reason: missing };
}

let dir: string;
let server: { child: ChildProcess; url: string };
let engineProxy: Server;
let assets: string;
let installer: AgentProcess | undefined;
const container = `fleet-systemd-${randomBytes(4).toString('hex')}`;
const nodeName = `sysd-${randomBytes(3).toString('hex')}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
async function api(path: string, method = 'GET', body?: unknown): Promise<any> {
  const res = await fetch(server.url + path, {
    method,
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return res.json();
}

async function nodeNamed(name: string) {
  const { nodes } = (await api('/api/nodes/')) as { nodes: { id: string; name: string; status: string }[] };
  return nodes.find((n) => n.name === name);
}

/** A command inside the container; resolves with its exit code and output whatever the code. */
async function inside(...command: string[]) {
  const { code, out } = await capture('podman', ['exec', container, ...command]);
  return { code, out: out.trim() };
}

const unitProperty = async (name: string) =>
  (await inside('systemctl', 'show', '--property', name, '--value', 'fleet-agent')).out;

/** This machine's root as a container sees it: /etc copied (no enabled services), /usr mounted later. */
async function rootFilesystem(root: string): Promise<void> {
  for (const d of [
    'usr',
    'proc',
    'sys',
    'dev',
    'run',
    'tmp',
    'root',
    'home',
    'srv/engine',
    'var/lib',
    'var/log',
    'var/tmp',
    'var/cache',
  ])
    await mkdir(join(root, d), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) await symlink(`usr/${l}`, join(root, l));
  await symlink('../run', join(root, 'var/run'));
  await cp('/etc', join(root, 'etc'), { recursive: true, verbatimSymlinks: true });
  // The services this machine enables (engines, databases, sshd, timers) stay off in the container.
  const units = join(root, 'etc/systemd/system');
  for (const entry of await readdir(units, { withFileTypes: true }))
    if (entry.isDirectory() && entry.name.endsWith('.wants'))
      await rm(join(units, entry.name), { recursive: true });
    else if (entry.isSymbolicLink()) await unlink(join(units, entry.name));
  await writeFile(join(root, 'etc/machine-id'), '');
  await rm(join(root, 'etc/fleet-agent'), { recursive: true, force: true });
}

describeWith(systemdInPodman(), 'install.sh under systemd (Podman container booting systemd)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-systemd-'));
    await chmod(dir, 0o755);
    assets = join(dir, 'assets');
    const root = join(dir, 'root');
    await Promise.all([mkdir(assets), mkdir(root)]);
    await buildAgentBundle(join(assets, 'agent.mjs'));
    server = await startInstallServer(dir, assets, API_KEY);
    await rootFilesystem(root);
    engineProxy = await engineSocketAt(join(root, 'srv/engine/docker.sock'), ENGINE_GID);
    await run('podman', [
      'run',
      '-d',
      '--name',
      container,
      '--systemd=always',
      '--network',
      'host',
      '-v',
      '/usr:/usr:ro',
      '--rootfs',
      root,
      '/sbin/init',
    ]);
    // `is-system-running --wait` answers once booted: "running", or "degraded" when a unit failed;
    // before systemd's bus is up it fails to connect, and is asked again.
    await eventually(
      'systemd booted in the container',
      async () => {
        const booted = await inside('systemctl', 'is-system-running', '--wait');
        if (!['running', 'degraded'].includes(booted.out)) throw new Error(booted.out);
      },
      60_000,
      500,
    );
  }, 240_000);

  afterAll(async () => {
    await installer?.kill('SIGTERM').catch(() => undefined);
    await run('podman', ['rm', '-f', '-t', '0', container]).catch(() => undefined);
    engineProxy?.close();
    server?.child.kill('SIGTERM');
    if (server) await once(server.child, 'exit');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let nodeId = '';

  it('the pasted line installs and starts the service, and the node comes online', async () => {
    const { install_command: line } = (await api(`/api/swarm/join-token?name=${nodeName}`)) as {
      install_command: string;
    };
    const install = await inside(
      'sh',
      '-c',
      `${line.replace('| sudo sh', '| sh')} --engine-socket /srv/engine/docker.sock`,
    );
    expect(install.code, install.out).toBe(0);
    expect(install.out).toContain('the agent runs as the service fleet-agent');
    expect((await inside('systemctl', 'is-enabled', 'fleet-agent')).out).toBe('enabled');
    expect((await inside('systemctl', 'is-active', 'fleet-agent')).out).toBe('active');
    const node = await eventually(
      'the node online',
      async () => {
        const n = await nodeNamed(nodeName);
        if (n?.status !== 'online') throw new Error(`node: ${JSON.stringify(n)}`);
        return n;
      },
      60_000,
      500,
    );
    nodeId = node.id;
    // The agent runs as the unit's user, with the engine socket's group.
    const pid = await unitProperty('MainPID');
    const status = (await inside('cat', `/proc/${pid}/status`)).out;
    const uid = (await inside('id', '-u', 'fleet-agent')).out;
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(uid);
    expect(/^Groups:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/)).toContain(String(ENGINE_GID));
    const journal = await inside('journalctl', '-u', 'fleet-agent', '--no-pager', '-o', 'cat');
    expect(journal.out).toContain('"message":"agent running"');
  }, 180_000);

  it('systemd restarts the agent after a SIGKILL, and the node keeps its id', async () => {
    const pid = await unitProperty('MainPID');
    expect(Number(pid)).toBeGreaterThan(0);
    expect(await unitProperty('NRestarts')).toBe('0');
    expect((await inside('kill', '-KILL', pid)).code).toBe(0);
    await eventually(
      'a restarted agent',
      async () => {
        const [restarts, active, now] = await Promise.all([
          unitProperty('NRestarts'),
          inside('systemctl', 'is-active', 'fleet-agent'),
          unitProperty('MainPID'),
        ]);
        if (restarts !== '1' || active.out !== 'active' || now === pid || now === '0')
          throw new Error(`NRestarts ${restarts}, ${active.out}, MainPID ${now} (was ${pid})`);
      },
      30_000,
      500,
    );
    // The restarted agent registers again with its own stored credential: the same node, online.
    await eventually(
      'the restarted agent running',
      async () => {
        const journal = await inside('journalctl', '-u', 'fleet-agent', '--no-pager', '-o', 'cat');
        if (journal.out.split('"message":"agent running"').length !== 3) throw new Error(journal.out);
      },
      60_000,
      500,
    );
    const node = await nodeNamed(nodeName);
    expect(node).toMatchObject({ id: nodeId, status: 'online' });
  }, 120_000);

  it('systemctl stop ends the agent cleanly: exit 0, the unit inactive, not failed', async () => {
    const stop = await inside('systemctl', 'stop', 'fleet-agent');
    expect(stop.code, stop.out).toBe(0);
    expect((await inside('systemctl', 'is-active', 'fleet-agent')).out).toBe('inactive');
    expect(await unitProperty('Result')).toBe('success');
    expect(await unitProperty('ExecMainStatus')).toBe('0');
    const journal = await inside('journalctl', '-u', 'fleet-agent', '--no-pager', '-o', 'cat');
    expect(journal.out).toContain('agent stopping; containers keep running');
    // It told the control plane on its way out: the node is offline now, not after the window.
    expect(journal.out).toContain('control plane told');
    expect(await nodeNamed(nodeName)).toMatchObject({ status: 'offline' });
    // Stopped is not crashed: systemd does not start it again.
    expect(await unitProperty('NRestarts')).toBe('1');
  }, 60_000);

  it('--uninstall removes the unit, files and user', async () => {
    const script = `curl -fsSL ${server.url}/install.sh | sh -s -- --uninstall`;
    const out = await inside('sh', '-c', script);
    expect(out.code, out.out).toBe(0);
    expect((await inside('systemctl', 'cat', 'fleet-agent')).code).not.toBe(0);
    expect((await inside('test', '-e', '/opt/fleet-agent')).code).toBe(1);
    expect((await inside('test', '-e', '/etc/fleet-agent')).code).toBe(1);
    expect((await inside('test', '-e', '/var/lib/fleet-agent')).code).toBe(1);
    expect((await inside('id', 'fleet-agent')).code).not.toBe(0);
  }, 60_000);

  it('host.install over SSH: a real agent logs in to the host as root and runs install.sh there; the new node registers', async () => {
    // The host's sshd: root with a password, on a loopback port of its own.
    const port = await freePort();
    const password = `root-${randomBytes(9).toString('base64url')}`;
    const setup = await inside(
      'sh',
      '-c',
      // The engine where a host has it, for the host check and install.sh to find.
      `set -e; ln -sf /srv/engine/docker.sock /run/docker.sock
echo "root:${password}" | chpasswd; mkdir -p /run/sshd; rm -f /etc/ssh/fleet_host_key*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/fleet_host_key
/usr/sbin/sshd -f /dev/null -o ListenAddress=127.0.0.1 -o Port=${port} -o HostKey=/etc/ssh/fleet_host_key \
  -o PermitRootLogin=yes -o PasswordAuthentication=yes -o KbdInteractiveAuthentication=no -o UsePAM=no \
  -o PidFile=/run/sshd-fleet.pid -o 'Subsystem=sftp internal-sftp'`,
    );
    expect(setup.code, setup.out).toBe(0);

    installer = new AgentProcess({
      url: server.url,
      name: `${nodeName}-installer`,
      stateDir: join(dir, 'installer-state'),
      entry: [join(assets, 'agent.mjs')],
      env: { ...process.env, FLEET_API_KEY: API_KEY, FLEET_URL: '', FLEET_NODE_NAME: '' },
    });
    await installer.start(60_000);
    const cred = await api('/api/vault/', 'POST', { name: `${nodeName}-root`, username: 'root', password });
    const newName = `${nodeName}-ssh`;
    const queued = await api('/api/install-queue/queue', 'POST', {
      host: '127.0.0.1',
      port,
      credential_id: cred.id,
      cluster: 'edge',
      name: newName,
      node_id: installer.name,
    });
    expect(queued.job_id, JSON.stringify(queued)).toEqual(expect.any(String));
    const job = await eventually(
      'the install job to end',
      async () => {
        const j = await api(`/api/install-queue/queue/${queued.job_id}`);
        if (!['joined', 'failed'].includes(j.state)) throw new Error(JSON.stringify(j));
        return j;
      },
      240_000,
      1_000,
    );
    expect(job, JSON.stringify(job)).toMatchObject({
      state: 'joined',
      error: null,
      joined_node_name: newName,
    });
    expect(job.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['connect', 'ok'],
      ['check', 'ok'],
      ['install', 'ok'],
      ['register', 'ok'],
    ]);
    expect(job.facts).toMatchObject({ arch: 'x86_64', sudo: 'root' });
    expect(job.steps[2].detail).toContain('the agent runs as the service fleet-agent');
    const shown = JSON.stringify(await api('/api/install-queue/queue'));
    expect(shown).not.toContain(password);
    expect(shown).not.toContain('FLEETJT-1-');

    // Installed by install.sh: the systemd service, its user, the cluster; the used token gone.
    expect((await inside('systemctl', 'is-active', 'fleet-agent')).out).toBe('active');
    const env = (await inside('cat', '/etc/fleet-agent/agent.env')).out;
    expect(env).toContain(`FLEET_NODE_NAME=${newName}`);
    expect(env).toContain('FLEET_CLUSTER=edge');
    expect(env).not.toContain('FLEET_JOIN_TOKEN');
    const node = await eventually(
      'the new node online',
      async () => {
        const n = await nodeNamed(newName);
        if (n?.status !== 'online') throw new Error(JSON.stringify(n));
        return n;
      },
      60_000,
      500,
    );
    expect(node.id).toBe(job.joined_node_id);
  }, 360_000);
});
