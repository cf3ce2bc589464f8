/**
 * The bundled `fleet` CLI (dist bundle of cli/main.ts, built here) against `npm start` as a child
 * process (API_AUTH=true, COMMAND_WAIT_MS=0 so every call that waits for agents answers 202 and
 * the CLI must follow its commands), with one real agent on Podman. Containers are found by
 * this suite's node name; afterAll removes them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../protocol/messages.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { startLocalProcess } from '../harness/local-process.js';
import { describeWith, engine, requireEngine, uniqueName } from '../harness/services.js';
import { AgentProcess, REPO_ROOT, engineContainers, eventually, removeNodeContainers } from './harness.js';

const run = promisify(execFile);
const API_KEY = `fleet-cli-${'k'.repeat(32)}`;
/** Prints a numbered line a second until stopped (busybox sh as PID 1 ignores SIGTERM without the trap). */
const TICKER = [
  'sh',
  '-c',
  "trap 'exit 0' TERM; i=0; while true; i=$((i+1)); do echo tick $i; sleep 1; done",
];

/** A loopback TCP proxy whose connections the test can cut. */
async function tcpProxy(upstreamPort: number) {
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    const upstream = connect(upstreamPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    for (const s of pair) s.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    /** Cuts every open connection; answers how many there were. */
    drop: () => {
      const n = pairs.size;
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      return n;
    },
    connections: () => accepted,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

describeWith(requireEngine(), 'fleet CLI (bundled) against npm start and a real agent on Podman', () => {
  const nodeName = uniqueName('cli');
  let docker: Docker;
  let dir: string;
  let bundle: string;
  let runtime: ChildProcess;
  let url: string;
  let agent: AgentProcess;
  /** The CLI's environment: its own XDG config folder, no FLEET_URL/FLEET_API_KEY unless given. */
  let cliEnv: NodeJS.ProcessEnv;

  const fleet = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Out> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [bundle, ...args], {
        env: { ...cliEnv, ...env },
        timeout: 120_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      if (typeof e.code !== 'number') throw error;
      return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const json = async <T>(args: string[]): Promise<T> => {
    const out = await fleet(['--json', ...args]);
    expect(out.code, out.stderr).toBe(0);
    return JSON.parse(out.stdout) as T;
  };
  const running = async () =>
    (await engineContainers(docker, [nodeName], { 'fleet.image': BUSYBOX_IMAGE })).filter(
      (c) => c.state === 'running',
    );

  beforeAll(async () => {
    docker = engine();
    await ensureBusyboxImage(docker);
    dir = await mkdtemp(join(tmpdir(), 'fleet-cli-'));
    bundle = join(dir, 'fleet.mjs');
    await run(process.execPath, ['--import', 'tsx', 'cli/build.ts', bundle], { cwd: REPO_ROOT });
    const dataDir = join(dir, 'data');
    await rm(dataDir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dataDir, { recursive: true }));
    await writeFile(join(dataDir, 'secrets.json'), JSON.stringify({ 'api-key': API_KEY }), { mode: 0o600 });
    ({ child: runtime, url } = await startLocalProcess(dataDir, {
      // Embedded (dynalite, secrets.json): nothing of the shared moto, and nothing leaves loopback.
      AWS_ENDPOINT_URL: '',
      REGISTRY_URL: '',
      AI_ENABLED: 'false',
      NOVITA_BASE_URL: 'http://127.0.0.1:9/v1',
      LOG_LEVEL: 'SILENT',
      API_AUTH: 'true',
      COMMAND_WAIT_MS: '0',
    }));
    agent = new AgentProcess({
      url,
      name: nodeName,
      stateDir: join(dir, 'agent'),
      heartbeatSeconds: 1,
      env: { ...process.env, FLEET_API_KEY: API_KEY, FLEET_ALLOW_EXEC: 'true' },
    });
    await agent.start();
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(dir, 'config') };
    delete env['FLEET_URL'];
    delete env['FLEET_API_KEY'];
    cliEnv = env;
  }, 180_000);

  afterAll(async () => {
    await agent?.kill('SIGTERM');
    runtime?.kill('SIGTERM');
    if (docker) await removeNodeContainers(docker, [nodeName]);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('says clearly when the control plane is unreachable (exit 3)', async () => {
    const out = await fleet(['nodes'], { FLEET_URL: 'http://127.0.0.1:9' });
    expect(out.code).toBe(3);
    expect(out.stderr).toContain('cannot reach the control plane at http://127.0.0.1:9');
  });

  it('refuses a wrong API key (exit 4) and bad arguments before any request (exit 2)', async () => {
    const refused = await fleet(['nodes'], { FLEET_URL: url, FLEET_API_KEY: 'not-the-key' });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('401');
    const bad = await fleet(['run', BUSYBOX_IMAGE, '--cpu', 'lots'], { FLEET_URL: url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--cpu');
  });

  it('fleet login checks the key and saves it 0600 under XDG_CONFIG_HOME; later calls need no env', async () => {
    const out = await fleet(['login', '--url', url, '--api-key', API_KEY]);
    expect(out.code, out.stderr).toBe(0);
    const file = join(dir, 'config', 'fleet', 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ url, apiKey: API_KEY });
    const nodes = await fleet(['nodes']);
    expect(nodes.code, nodes.stderr).toBe(0);
    expect(nodes.stdout.split('\n')[0]).toMatch(/^NAME\s+ID\s+STATUS/);
    expect(nodes.stdout).toContain(nodeName);
  });

  it('fleet nodes --json and fleet node NAME show the node; an unknown node is exit 5', async () => {
    const { nodes } = await json<{ nodes: { name: string; status: string }[] }>(['nodes']);
    expect(nodes.filter((n) => n.name === nodeName).map((n) => n.status)).toEqual(['online']);
    const one = await json<{ name: string; containers: unknown[]; labels: object }>(['node', nodeName]);
    expect(one.name).toBe(nodeName);
    expect(one.containers).toEqual([]);
    // The node's own policy, as its agent reported it (everything off but the checkpoint folder).
    const shown = await fleet(['node', nodeName]);
    expect(shown.stdout).toMatch(
      /^policy: +privileged refused; host folders \/\S+; engine socket refused; host network refused; host PID refused; capabilities none$/m,
    );
    const missing = await fleet(['node', 'no-such-node']);
    expect(missing.code).toBe(5);
  });

  it('fleet run starts copies (following the pending commands), fleet ps lists them', async () => {
    const out = await fleet([
      'run',
      BUSYBOX_IMAGE,
      '--count',
      '2',
      '--cpu',
      '0.5',
      '--memory',
      '64m',
      '--node',
      nodeName,
      '--',
      ...TICKER,
    ]);
    expect(out.code, out.stderr).toBe(0);
    // COMMAND_WAIT_MS=0: the start answered 202 and the CLI followed both commands.
    expect(out.stderr).toContain('2 command(s) done');
    expect(out.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+NODE_ID/);
    expect((await running()).length).toBe(2);
    const ps = await json<{ containers: { status: string; image: string }[]; total: number }>([
      'ps',
      '--node',
      nodeName,
    ]);
    expect(ps.total).toBe(2);
    expect(ps.containers.map((c) => [c.image, c.status])).toEqual([
      [BUSYBOX_IMAGE, 'running'],
      [BUSYBOX_IMAGE, 'running'],
    ]);
  });

  it('fleet scale sets the copies of the image’s service', async () => {
    const out = await fleet(['scale', BUSYBOX_IMAGE, '3']);
    expect(out.code, out.stderr).toBe(0);
    await eventually('3 running copies', async () => expect((await running()).length).toBe(3), 60_000);
  }, 90_000);

  it('fleet logs NODE -f follows every container of the node, each line once under its name, and the node’s own lines; Ctrl-C ends it', async () => {
    const { containers } = await json<{ containers: { name: string; status: string }[] }>([
      'ps',
      '--node',
      nodeName,
    ]);
    const names = containers.filter((c) => c.status === 'running').map((c) => c.name);
    expect(names.length).toBe(3);
    const child = spawn(process.execPath, [bundle, 'logs', nodeName, '-f'], {
      env: cliEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ticksOf = (name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name} | tick `))
        .map((l) => Number(l.slice(`${name} | tick `.length)));
    await eventually(
      'two live lines of each container',
      () => {
        for (const name of names) {
          const t = ticksOf(name);
          expect(t.length, name).toBeGreaterThan(1);
          expect(
            t.slice(1).every((n, i) => n === t[i]! + 1),
            `${name}: ${t.join(',')}`,
          ).toBe(true);
        }
      },
      30_000,
    );
    expect(text).toContain(`${nodeName} | [info] Streaming the logs of node ${nodeName}`);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 60_000);

  // Live follows wait on lines a container prints each second (each wait up to 30 s on a loaded
  // machine), so these cases get more than the default 30 s in all.
  it('fleet logs reads a container’s lines; -f follows the WebSocket stream, in order and once each across a dropped connection, and ends with the container', async () => {
    const [first] = (await json<{ containers: { id: string; status: string }[] }>(['ps', '--node', nodeName]))
      .containers;
    await eventually('a tick line', async () => {
      const out = await fleet(['logs', nodeName, '--container', first!.id]);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toMatch(/^tick 1$/m);
    });
    // The stream goes through a loopback proxy that the test can cut, as a network drop would.
    const proxy = await tcpProxy(Number(new URL(url).port));
    const child = spawn(
      process.execPath,
      [
        bundle,
        '--ws-url',
        `ws://127.0.0.1:${proxy.port}/ws`,
        'logs',
        nodeName,
        '--container',
        first!.id,
        '-f',
      ],
      { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ticks = () => [...text.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));
    /** Every line once and in order: each tick is the one before plus one. */
    const inOrderOnce = () => {
      const t = ticks();
      expect(t.length).toBeGreaterThan(0);
      expect(
        t.slice(1).every((n, i) => n === t[i]! + 1),
        t.join(','),
      ).toBe(true);
      expect(text.split('\n').filter(Boolean).length).toBe(t.length);
    };
    const seenFirst = await eventually('the tail on connect', () => {
      expect(ticks().length).toBeGreaterThan(0);
      return Math.max(...ticks());
    });
    const beforeDrop = await eventually(
      'newer ticks, live',
      () => {
        expect(Math.max(...ticks())).toBeGreaterThan(seenFirst);
        return Math.max(...ticks());
      },
      30_000,
    );
    expect(proxy.drop()).toBe(1);
    await eventually(
      'the stream reconnected',
      () => expect(errText).toContain('log stream reconnected'),
      30_000,
    );
    expect(errText).toMatch(/log stream dropped \(1006\); reconnecting/);
    await eventually(
      'ticks after the reconnect',
      () => expect(Math.max(...ticks())).toBeGreaterThan(beforeDrop + 1),
      30_000,
    );
    inOrderOnce();
    expect(proxy.connections()).toBe(2);
    // The container stopped through the API: the follow ends by itself, with its last lines.
    const stop = await fleet(['stop', first!.id]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await exited, errText).toBe(0);
    inOrderOnce();
    await proxy.close();
  }, 120_000);

  it('fleet exec runs a command on the node and exits with its status', async () => {
    const out = await fleet(['exec', nodeName, '--', 'sh', '-c', 'echo hello from $0; exit 3', 'the node']);
    expect(out.stdout).toBe('hello from the node\n');
    expect(out.code).toBe(3);
  });

  it('fleet stop --image stops every copy', async () => {
    const out = await json<{ stopped: { stopped: boolean }[] }>(['stop', '--image', BUSYBOX_IMAGE]);
    // Three copies, one stopped by the logs test.
    expect(out.stopped.map((s) => s.stopped)).toEqual([true, true]);
    expect((await running()).length).toBe(0);
  });

  it('fleet jobs create runs a job once; jobs logs -f prints its output live from the node, then ends with the run', async () => {
    const name = uniqueName('cli-job');
    const created = await json<{ job_id: string; name: string }>([
      'jobs',
      'create',
      '--name',
      name,
      '--image',
      BUSYBOX_IMAGE,
      '--max-retries',
      '0',
      '--',
      'sh',
      '-c',
      'echo epoch 1 loss 0.9; while [ ! -d /tmp/release ]; do sleep 1; done; echo epoch 2 loss 0.5',
    ]);
    expect(created.name).toBe(name);
    // Through a proxy that counts connections: the live lines come over the logs stream.
    const proxy = await tcpProxy(Number(new URL(url).port));
    const child = spawn(
      process.execPath,
      [bundle, '--ws-url', `ws://127.0.0.1:${proxy.port}/ws`, 'jobs', 'logs', created.job_id, '-f'],
      { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // The run waits for /tmp/release: its first line can only have come live from the node.
    await eventually('the first epoch, live', () => expect(text).toContain('epoch 1 loss 0.9'), 60_000);
    const during = await json<{ runs: { status: string }[] }>(['jobs', 'runs', created.job_id]);
    expect(during.runs.map((r) => r.status)).toEqual(['running']);
    const [container] = await engineContainers(docker, [nodeName], { [LABELS.kind]: 'run' }).then((cs) =>
      cs.filter((c) => c.state === 'running'),
    );
    const exec = await docker.getContainer(container!.id).exec({ Cmd: ['mkdir', '/tmp/release'] });
    await exec.start({ Detach: true });
    expect(await exited, errText).toBe(0);
    expect(text.split('\n').filter(Boolean)).toEqual(['epoch 1 loss 0.9', 'epoch 2 loss 0.5']);
    expect(errText).toMatch(/succeeded \(exit 0\)/);
    expect(proxy.connections()).toBeGreaterThanOrEqual(1);
    await proxy.close();
    const runs = await json<{
      runs: { status: string; exit_code: number | null; log_tail: string | null }[];
    }>(['jobs', 'runs', created.job_id]);
    expect(runs.runs.map((r) => [r.status, r.exit_code])).toEqual([['succeeded', 0]]);
    expect(runs.runs[0]!.log_tail).toContain('epoch 2 loss 0.5');
    const list = await fleet(['jobs', 'list']);
    expect(list.stdout).toContain(name);
  }, 120_000);

  it('fleet jobs logs -f exits 8 when the run fails', async () => {
    const created = await json<{ job_id: string }>([
      'jobs',
      'create',
      '--name',
      uniqueName('cli-fail'),
      '--image',
      BUSYBOX_IMAGE,
      '--max-retries',
      '0',
      '--',
      'sh',
      '-c',
      'echo ValueError: loss is NaN; exit 3',
    ]);
    const logs = await fleet(['jobs', 'logs', created.job_id, '-f']);
    expect(logs.code).toBe(8);
    expect(logs.stderr).toMatch(/exit 3/);
  }, 60_000);

  it('fleet join-command prints the install line with a fresh join token', async () => {
    const out = await fleet(['join-command', '--max-uses', '1', '--name', 'gpu-02']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toMatch(
      new RegExp(
        `^curl -fsSL ${url.replace(/\./g, '\\.')}/install\\.sh \\| sudo sh -s -- --token '\\S+' --name 'gpu-02'$`,
      ),
    );
    const { tokens } = (await (
      await fetch(`${url}/api/swarm/join-tokens`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).json()) as { tokens: { max_uses: number | null }[] };
    expect(tokens.map((t) => t.max_uses)).toContain(1);
  });

  it('fleet tasks submit queues a task; --wait gives up at --timeout with exit 7 while no worker serves it', async () => {
    const out = await fleet([
      '--timeout',
      '2',
      'tasks',
      'submit',
      '--model',
      'llama-2-7b',
      '--param',
      'prompt="hi"',
      '--wait',
    ]);
    expect(out.code).toBe(7);
    expect(out.stderr).toMatch(/task \S+ still queued after 2 s/);
    const { tasks } = await json<{ tasks: { model_name: string; status: string }[] }>(['tasks', 'list']);
    expect(tasks.map((t) => [t.model_name, t.status])).toEqual([['llama-2-7b', 'queued']]);
    const unknown = await fleet(['tasks', 'submit', '--model', 'no-such-model']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown model');
  });

  it('fleet instances lists the managed cloud instances (none here)', async () => {
    const out = await json<{ instances: unknown[] }>(['instances']);
    expect(out.instances).toEqual([]);
  });
});
