import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AgentEvent } from '../../../protocol/messages.js';
import type { CommandEnvelope, CommandResult } from '../../../protocol/commands.js';
import { LABELS } from '../../../protocol/messages.js';
import type { Delivery } from '../../../agent/channel.js';
import { CommandExecutor } from '../../../agent/executor.js';
import { CommandJournal } from '../../../agent/journal.js';
import { silentLogger } from '../../../agent/log.js';
import { TaskRunner } from '../../../agent/tasks.js';
import { exitKey } from '../../../agent/watcher.js';
import { FakeEngine } from './fake-engine.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-exec-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const startEnvelope = (commandId: string, instanceId = 'inst-1'): CommandEnvelope => ({
  commandId,
  nodeId: 'node-id-1',
  issuedAt: new Date().toISOString(),
  command: {
    type: 'container.start',
    spec: {
      instanceId,
      imageId: 'localhost/fleet-test:busybox',
      name: `svc-${instanceId}`,
      kind: 'service',
      env: {},
      ports: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp' }],
      volumes: [],
      labels: {},
      restart: 'no',
    },
  },
});

function delivery(envelope: unknown, handle = 'rh-1'): Delivery & { acked: number } {
  const d = {
    receiptHandle: handle,
    body: typeof envelope === 'string' ? envelope : JSON.stringify(envelope),
    acked: 0,
    ack: async () => {
      d.acked++;
    },
  };
  return d;
}

async function setup(
  options: { reportFails?: number; allowExec?: boolean; stateDir?: string; maxExecOutputBytes?: number } = {},
) {
  const engine = new FakeEngine();
  const journal = await CommandJournal.open(join(dir, 'journal.json'));
  const events: AgentEvent[] = [];
  const reported: Array<{ commandId: string; result: CommandResult }> = [];
  let failures = options.reportFails ?? 0;
  const tasks = new TaskRunner({
    engine,
    journal,
    events: { send: (e) => events.push(e) },
    logger: silentLogger,
  });
  const expected: string[] = [];
  const executor = new CommandExecutor({
    nodeId: () => 'node-id-1',
    engine,
    journal,
    tasks,
    logger: silentLogger,
    hooks: { expectExit: (id) => expected.push(id) },
    ...(options.allowExec !== undefined ? { allowExec: options.allowExec } : {}),
    ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
    ...(options.maxExecOutputBytes !== undefined ? { maxExecOutputBytes: options.maxExecOutputBytes } : {}),
    reporter: {
      reportResult: async (commandId, result) => {
        if (failures-- > 0) throw new Error('control plane down');
        reported.push({ commandId, result });
      },
    },
  });
  return { engine, journal, executor, reported, events, expected };
}

describe('CommandExecutor: at-most-once', () => {
  it('executes a command once; a second delivery re-reports the stored result and is acked', async () => {
    // Prepare
    const { engine, executor, reported } = await setup();
    const env = startEnvelope('cmd-1');
    const first = delivery(env, 'rh-1');
    const again = delivery(env, 'rh-2');
    // Act
    await executor.handle(first);
    await executor.handle(again);
    // Assess
    expect(engine.calls.filter((c) => c.startsWith('createAndStart'))).toHaveLength(1);
    expect(reported).toHaveLength(2);
    expect(reported[1]).toEqual(reported[0]);
    expect(reported[0]!.result).toMatchObject({
      status: 'succeeded',
      output: { reused: false, ports: [{ containerPort: 8080, hostPort: 40000 }] },
    });
    expect([first.acked, again.acked]).toEqual([1, 1]);
  });

  it('dedups across an agent restart through the journal file', async () => {
    const a = await setup();
    await a.executor.handle(delivery(startEnvelope('cmd-1')));
    // A new agent process: same state dir, fresh memory; the engine still holds the container.
    const b = await setup();
    b.engine.containers.clear();
    await b.executor.handle(delivery(startEnvelope('cmd-1')));
    expect(b.engine.calls).toEqual([]);
    expect(b.reported[0]!.result).toEqual(a.reported[0]!.result);
  });

  it('concurrent duplicates execute once', async () => {
    const { engine, executor, reported } = await setup();
    const env = startEnvelope('cmd-1');
    await Promise.all([executor.handle(delivery(env, 'a')), executor.handle(delivery(env, 'b'))]);
    expect(engine.calls.filter((c) => c.startsWith('createAndStart'))).toHaveLength(1);
    expect(reported).toHaveLength(2);
  });

  it('does not ack when the result could not be reported; the redelivery reports the stored result', async () => {
    const { engine, executor, reported } = await setup({ reportFails: 1 });
    const first = delivery(startEnvelope('cmd-1'));
    await executor.handle(first);
    expect(first.acked).toBe(0);
    const redelivered = delivery(startEnvelope('cmd-1'), 'rh-2');
    await executor.handle(redelivered);
    expect(redelivered.acked).toBe(1);
    expect(reported).toHaveLength(1);
    expect(engine.calls.filter((c) => c.startsWith('createAndStart'))).toHaveLength(1);
  });

  it('container.start reuses a container already carrying the instance label (agent died mid-start)', async () => {
    const { engine, executor, reported } = await setup();
    const orphan = engine.add({ instanceId: 'inst-1', state: 'created', running: false });
    await executor.handle(delivery(startEnvelope('cmd-new')));
    expect(engine.calls).not.toContain('createAndStart inst-1');
    expect(engine.calls).toContain(`start ${orphan.id}`);
    expect(reported[0]!.result).toMatchObject({
      status: 'succeeded',
      output: { containerId: orphan.id, reused: true },
    });
  });

  it('a start redelivered after its process died resumes: the container it made and that ran is not started again', async () => {
    // Prepare: the killed process created and started the container; a stop then ended it.
    const a = await setup();
    await a.journal.begin('cmd-1', 'container.start');
    const made = a.engine.add({
      instanceId: 'inst-1',
      state: 'exited',
      running: false,
      startedAt: '2026-01-01T00:00:00Z',
      labels: { [LABELS.managed]: 'true', [LABELS.instance]: 'inst-1', [LABELS.command]: 'cmd-1' },
    });
    const b = await setup();
    b.engine.containers.set(made.id, { ...made });
    // Act
    await b.executor.handle(delivery(startEnvelope('cmd-1')));
    // Assess
    expect(b.engine.calls.filter((c) => c.startsWith('start') || c.startsWith('createAndStart'))).toEqual([]);
    expect(b.reported[0]!.result).toMatchObject({
      status: 'succeeded',
      output: { containerId: made.id, reused: true, state: 'exited' },
    });
    expect(b.journal.begun('cmd-1')).toBeUndefined();
  });

  it('a restart redelivered after its process died is not done twice; one it never got to is done', async () => {
    // Prepare
    const a = await setup();
    const beganAt = Date.now();
    await a.journal.begin('rs-done', 'container.restart');
    await a.journal.begin('rs-undone', 'container.restart');
    const b = await setup();
    const restarted = b.engine.add({
      instanceId: 'inst-1',
      startedAt: new Date(beganAt + 1000).toISOString(),
    });
    const untouched = b.engine.add({
      instanceId: 'inst-2',
      startedAt: new Date(beganAt - 60_000).toISOString(),
    });
    const base = { nodeId: 'node-id-1', issuedAt: '' };
    // Act
    await b.executor.handle(
      delivery({
        ...base,
        commandId: 'rs-done',
        command: { type: 'container.restart', instanceId: 'inst-1' },
      }),
    );
    await b.executor.handle(
      delivery({
        ...base,
        commandId: 'rs-undone',
        command: { type: 'container.restart', instanceId: 'inst-2' },
      }),
    );
    // Assess
    expect(b.engine.calls.filter((c) => c.startsWith('stop') || c.startsWith('start '))).toEqual([
      `stop ${untouched.id}`,
      `start ${untouched.id}`,
    ]);
    expect(b.reported.map((r) => r.result.status)).toEqual(['succeeded', 'succeeded']);
    expect(b.reported[0]!.result.output).toMatchObject({ containerId: restarted.id, state: 'running' });
  });

  it('a failing command becomes a failed result, still journalled and acked', async () => {
    const { engine, executor, reported, journal } = await setup();
    engine.failCreate = new Error('port is already allocated');
    const d = delivery(startEnvelope('cmd-1'));
    await executor.handle(d);
    expect(reported[0]!.result).toMatchObject({ status: 'failed', error: 'port is already allocated' });
    expect(journal.get('cmd-1')?.result.status).toBe('failed');
    expect(d.acked).toBe(1);
  });

  it('drops an unreadable envelope after reporting it failed when it has a command id', async () => {
    const { executor, reported } = await setup();
    const d = delivery({ commandId: 'cmd-bad', nodeId: 'node-id-1', command: { type: 'container.explode' } });
    await executor.handle(d);
    expect(reported[0]).toMatchObject({ commandId: 'cmd-bad', result: { status: 'failed' } });
    expect(d.acked).toBe(1);
    const garbage = delivery('not json');
    await executor.handle(garbage);
    expect(garbage.acked).toBe(1);
  });

  it('refuses a command addressed to another node', async () => {
    const { engine, executor, reported } = await setup();
    await executor.handle(delivery({ ...startEnvelope('cmd-1'), nodeId: 'someone-else' }));
    expect(reported[0]!.result).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/for node someone-else/),
    });
    expect(engine.calls).toEqual([]);
  });
});

describe('CommandExecutor: container commands', () => {
  it('stop and remove are idempotent and tell the watcher the exit is expected', async () => {
    const { engine, executor, reported, expected } = await setup();
    const c = engine.add({ instanceId: 'inst-1' });
    const stop = {
      commandId: 's1',
      nodeId: 'node-id-1',
      issuedAt: '',
      command: { type: 'container.stop', instanceId: 'inst-1', timeoutSeconds: 1 },
    };
    await executor.handle(delivery(stop));
    await executor.handle(
      delivery({
        ...stop,
        commandId: 'r1',
        command: { type: 'container.remove', instanceId: 'inst-1', force: true },
      }),
    );
    await executor.handle(delivery({ ...stop, commandId: 's2' }));
    expect(expected).toEqual([c.id, c.id]);
    expect(reported.map((r) => r.result.output)).toMatchObject([
      { found: true, state: 'exited', exitCode: 137 },
      { found: true, removed: true },
      { found: false },
    ]);
  });

  it('restart stops and starts the same container, expecting its exit; an unknown instance fails', async () => {
    // Prepare
    const { engine, executor, reported, expected } = await setup();
    const c = engine.add({ instanceId: 'inst-1' });
    const base = { nodeId: 'node-id-1', issuedAt: '' };
    // Act
    await executor.handle(
      delivery({ ...base, commandId: 'rs1', command: { type: 'container.restart', instanceId: 'inst-1' } }),
    );
    await executor.handle(
      delivery({ ...base, commandId: 'rs2', command: { type: 'container.restart', instanceId: 'ghost' } }),
    );
    // Assess
    expect(expected).toEqual([c.id]);
    expect(engine.calls.filter((call) => call.startsWith('stop') || call.startsWith('start '))).toEqual([
      `stop ${c.id}`,
      `start ${c.id}`,
    ]);
    expect(reported[0]!.result).toMatchObject({
      status: 'succeeded',
      output: { containerId: c.id, state: 'running' },
    });
    expect(reported[1]!.result).toMatchObject({
      status: 'failed',
      error: 'no container on this node for instance ghost',
    });
  });

  it('logs and update fail clearly for an unknown instance', async () => {
    const { executor, reported } = await setup();
    const base = { nodeId: 'node-id-1', issuedAt: '' };
    await executor.handle(
      delivery({ ...base, commandId: 'l1', command: { type: 'container.logs', instanceId: 'ghost' } }),
    );
    await executor.handle(
      delivery({
        ...base,
        commandId: 'u1',
        command: { type: 'container.update', instanceId: 'ghost', cpuLimit: 1 },
      }),
    );
    expect(reported.map((r) => r.result.error)).toEqual([
      'no container on this node for instance ghost',
      'no container on this node for instance ghost',
    ]);
  });

  it('keeps a start before a stop for the same instance when both arrive in one batch', async () => {
    const { engine, executor } = await setup();
    const stop = {
      commandId: 's1',
      nodeId: 'node-id-1',
      issuedAt: '',
      command: { type: 'container.stop', instanceId: 'inst-1', timeoutSeconds: 1 },
    };
    await Promise.all([executor.dispatch(delivery(startEnvelope('c1'))), executor.dispatch(delivery(stop))]);
    const c = [...engine.containers.values()][0]!;
    expect(c.labels[LABELS.instance]).toBe('inst-1');
    expect(c.state).toBe('exited');
  });
});

describe('CommandExecutor: image.build', () => {
  async function buildSetup(buildRoot: string | undefined) {
    const engine = new FakeEngine();
    const journal = await CommandJournal.open(join(dir, 'journal-build.json'));
    const reported: Array<{ commandId: string; result: CommandResult }> = [];
    const executor = new CommandExecutor({
      nodeId: () => 'node-id-1',
      engine,
      journal,
      tasks: new TaskRunner({ engine, journal, events: { send: () => undefined }, logger: silentLogger }),
      logger: silentLogger,
      ...(buildRoot !== undefined ? { buildRoot } : {}),
      reporter: { reportResult: async (commandId, result) => void reported.push({ commandId, result }) },
    });
    return { engine, executor, reported };
  }
  const buildEnvelope = (
    commandId: string,
    dockerfilePath: string,
    extra: Record<string, unknown> = {},
  ): CommandEnvelope => ({
    commandId,
    nodeId: 'node-id-1',
    issuedAt: new Date().toISOString(),
    command: {
      type: 'image.build',
      image: '127.0.0.1:5000/team/app:v1',
      dockerfilePath,
      buildArgs: { GREETING: 'hi' },
      push: true,
      insecureRegistry: true,
      timeoutSeconds: 60,
      ...extra,
    } as CommandEnvelope['command'],
  });
  let root: string;
  beforeEach(async () => {
    root = join(dir, 'builds');
    await mkdir(join(root, 'app', 'sub'), { recursive: true });
    await writeFile(join(root, 'app', 'Dockerfile'), 'FROM base\nARG GREETING\n');
    await writeFile(join(dir, 'Dockerfile'), 'FROM outside\n');
    await symlink(join(dir, 'Dockerfile'), join(root, 'app', 'sub', 'Dockerfile'));
  });

  it('builds the Dockerfile’s folder with the build args, tags and pushes it', async () => {
    const { engine, executor, reported } = await buildSetup(root);
    await executor.handle(delivery(buildEnvelope('b-1', 'app/Dockerfile')));
    expect(reported[0]!.result.status, reported[0]!.result.error).toBe('succeeded');
    expect(engine.builds).toEqual([
      expect.objectContaining({
        contextDir: await realpath(join(root, 'app')),
        dockerfile: 'Dockerfile',
        tag: '127.0.0.1:5000/team/app:v1',
        buildArgs: { GREETING: 'hi' },
      }),
    ]);
    expect(engine.pushes).toEqual([{ ref: '127.0.0.1:5000/team/app:v1', insecure: true }]);
    const out = reported[0]!.result.output;
    expect(out).toMatchObject({
      image: '127.0.0.1:5000/team/app:v1',
      imageId: engine.images.get('127.0.0.1:5000/team/app:v1'),
      pushed: true,
    });
    expect(out['digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out['logTail']).toContain('Step 1/1 : FROM base');
  });

  it('a build delivered twice builds and pushes once, re-reporting the same result', async () => {
    const { engine, executor, reported } = await buildSetup(root);
    const env = buildEnvelope('b-2', join(root, 'app', 'Dockerfile'));
    await executor.handle(delivery(env, 'rh-1'));
    await executor.handle(delivery(env, 'rh-2'));
    expect(engine.calls.filter((c) => c.startsWith('buildImage') || c.startsWith('pushImage'))).toEqual([
      'buildImage 127.0.0.1:5000/team/app:v1',
      'pushImage 127.0.0.1:5000/team/app:v1',
    ]);
    expect(reported).toHaveLength(2);
    expect(reported[1]).toEqual(reported[0]);
  });

  it('is refused without a build root, saying how to enable builds', async () => {
    const { engine, executor, reported } = await buildSetup(undefined);
    await executor.handle(delivery(buildEnvelope('b-3', 'app/Dockerfile')));
    expect(reported[0]!.result).toMatchObject({
      status: 'failed',
      output: { errorType: 'BuildDisabledError' },
    });
    expect(reported[0]!.result.error).toMatch(/--build-root/);
    expect(engine.builds).toHaveLength(0);
  });

  it('refuses Dockerfiles outside the root: absolute, by "..", through a symlink, or missing', async () => {
    const { engine, executor, reported } = await buildSetup(root);
    const paths = [
      join(dir, 'Dockerfile'),
      '../Dockerfile',
      'app/sub/Dockerfile',
      'app/none/Dockerfile',
      'app',
    ];
    for (const [i, p] of paths.entries()) await executor.handle(delivery(buildEnvelope(`p-${i}`, p)));
    expect(reported.map((r) => r.result.output['errorType'])).toEqual(paths.map(() => 'BuildPathError'));
    expect(reported.map((r) => r.result.error)).toEqual([
      expect.stringMatching(/outside the build root/),
      expect.stringMatching(/outside the build root/),
      expect.stringMatching(/outside the build root/),
      expect.stringMatching(/does not exist/),
      expect.stringMatching(/not a file/),
    ]);
    expect(engine.builds).toHaveLength(0);
  });

  it('a failing build is not pushed and reports the build output; a failing push says the image was built', async () => {
    const { engine, executor, reported } = await buildSetup(root);
    engine.failBuild = 'RUN exited with 3';
    await executor.handle(delivery(buildEnvelope('f-1', 'app/Dockerfile')));
    expect(reported[0]!.result).toMatchObject({
      status: 'failed',
      output: { errorType: 'BuildFailedError' },
    });
    expect(reported[0]!.result.error).toContain('RUN exited with 3');
    expect(engine.pushes).toHaveLength(0);

    engine.failBuild = null;
    engine.failPush = 'connection refused';
    await executor.handle(delivery(buildEnvelope('f-2', 'app/Dockerfile')));
    expect(reported[1]!.result).toMatchObject({ status: 'failed', output: { errorType: 'PushFailedError' } });
    expect(reported[1]!.result.error).toMatch(
      /was built \(sha256:[0-9a-f]+\) but not pushed: push failed: connection refused/,
    );
  });
});

describe('CommandExecutor: network.scan', () => {
  let server: import('node:net').Server;
  let port: number;
  beforeEach(async () => {
    const { createServer } = await import('node:net');
    server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    port = (server.address() as import('node:net').AddressInfo).port;
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function scanSetup() {
    const engine = new FakeEngine();
    const journal = await CommandJournal.open(join(dir, 'journal-scan.json'));
    const reported: Array<{ commandId: string; result: CommandResult }> = [];
    const executor = new CommandExecutor({
      nodeId: () => 'node-id-1',
      engine,
      journal,
      tasks: new TaskRunner({ engine, journal, events: { send: () => undefined }, logger: silentLogger }),
      logger: silentLogger,
      networkScan: { arpPath: join(dir, 'no-arp'), reverse: async () => [] },
      reporter: { reportResult: async (commandId, result) => void reported.push({ commandId, result }) },
    });
    return { engine, executor, reported };
  }
  const scanEnvelope = (commandId: string, subnet: string, ports: number[]): CommandEnvelope => ({
    commandId,
    nodeId: 'node-id-1',
    issuedAt: new Date().toISOString(),
    command: { type: 'network.scan', subnet, ports },
  });

  it('scans and reports the devices; a redelivery re-reports the stored scan, touching no container', async () => {
    const { engine, executor, reported } = await scanSetup();
    const env = scanEnvelope('s-1', '127.0.0.0/30', [port]);
    const first = delivery(env, 'rh-1');
    const again = delivery(env, 'rh-2');
    await executor.handle(first);
    await executor.handle(again);
    expect(reported).toHaveLength(2);
    expect(reported[0]!.result.status, reported[0]!.result.error).toBe('succeeded');
    expect(reported[0]!.result.output).toMatchObject({
      subnet: '127.0.0.0/30',
      scanned: 2,
      devices: [{ ip: '127.0.0.2', hostname: null, mac: null, vendor: null, isJetson: false, ports: [port] }],
    });
    // The stored result, not a second scan (same start time).
    expect(reported[1]!.result).toEqual(reported[0]!.result);
    expect(first.acked + again.acked).toBe(2);
    expect(engine.calls).toEqual([]);
  });

  it('a subnet over /22 fails with NetworkScanError, whatever the control plane checked', async () => {
    const { executor, reported } = await scanSetup();
    await executor.handle(delivery(scanEnvelope('s-2', '10.0.0.0/16', [22])));
    expect(reported[0]!.result).toMatchObject({
      status: 'failed',
      output: { errorType: 'NetworkScanError' },
    });
    expect(reported[0]!.result.error).toMatch(/65536 addresses/);
  });

  it('ports default to 22, 80, 443, 5000, 8080, 8188, 8765', async () => {
    const { command } = await import('../../../protocol/commands.js');
    expect(command.parse({ type: 'network.scan', subnet: '192.168.1.0/24' })).toEqual({
      type: 'network.scan',
      subnet: '192.168.1.0/24',
      ports: [22, 80, 443, 5000, 8080, 8188, 8765],
    });
  });
});
const envelopeOf = (commandId: string, command: Record<string, unknown>) => ({
  commandId,
  nodeId: 'node-id-1',
  issuedAt: new Date().toISOString(),
  command,
});

describe('CommandExecutor: engine.prune', () => {
  it('removes stopped managed containers whose exit is reported, and dangling images; nothing else', async () => {
    // Prepare
    const { engine, executor, reported, journal } = await setup();
    const running = engine.add({ instanceId: 'run-1' });
    const exited = engine.add({
      instanceId: 'svc-1',
      state: 'exited',
      running: false,
      exitCode: 1,
      finishedAt: 't1',
    });
    const dead = engine.add({ instanceId: 'svc-2', state: 'dead', running: false, finishedAt: 't2' });
    const created = engine.add({ instanceId: 'svc-3', state: 'created', running: false });
    const unreported = engine.add({
      instanceId: 'run-2',
      kind: 'run',
      state: 'exited',
      running: false,
      finishedAt: 't3',
    });
    const refused = engine.add({ instanceId: 'svc-4', state: 'exited', running: false, finishedAt: 't4' });
    for (const c of [exited, dead, refused]) await journal.recordExit(exitKey(c));
    engine.refuseRemove.add(refused.id);
    engine.danglingImages = ['sha256:aaa', 'sha256:bbb'];
    // Act
    await executor.handle(delivery(envelopeOf('p1', { type: 'engine.prune' })));
    // Assess
    const result = reported[0]!.result;
    expect(result.status).toBe('succeeded');
    expect(result.output).toEqual({
      containersRemoved: [
        { containerId: exited.id, name: exited.name, instanceId: 'svc-1', kind: 'service', state: 'exited' },
        { containerId: dead.id, name: dead.name, instanceId: 'svc-2', kind: 'service', state: 'dead' },
      ],
      containersSkipped: [
        { containerId: unreported.id, name: unreported.name, reason: 'its exit is not reported yet' },
        {
          containerId: refused.id,
          name: refused.name,
          reason: `the engine refused: cannot remove ${refused.id}`,
        },
      ],
      imagesDeleted: ['sha256:aaa', 'sha256:bbb'],
      spaceReclaimedBytes: 2000,
    });
    expect([...engine.containers.keys()].sort()).toEqual(
      [running.id, created.id, unreported.id, refused.id].sort(),
    );
    // Never forced: a container the engine restarted meanwhile is refused, not killed.
    expect(engine.calls.filter((c) => c.startsWith('remove'))).toEqual([
      `remove ${exited.id}`,
      `remove ${dead.id}`,
      `remove ${refused.id}`,
    ]);
  });

  it('waits for a start of the same instance, and keeps what that start made running', async () => {
    const { engine, executor, reported, journal } = await setup();
    const old = engine.add({ instanceId: 'inst-1', state: 'exited', running: false, finishedAt: 't1' });
    await journal.recordExit(exitKey(old));
    // The start (reusing the stopped container) holds the instance's lock, inside the engine's start,
    // while the prune lists the container as stopped and waits for that lock.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const start = engine.start.bind(engine);
    engine.start = async (id) => {
      await gate;
      return start(id);
    };
    let listed!: () => void;
    const pruneListed = new Promise<void>((resolve) => (listed = resolve));
    const list = engine.list.bind(engine);
    engine.list = async () => {
      const all = await list();
      listed();
      return all;
    };
    const starting = executor.dispatch(delivery(startEnvelope('s1', 'inst-1'), 'a'));
    await vi.waitFor(() => expect(engine.calls).toContain('findByInstance inst-1'));
    const pruning = executor.dispatch(delivery(envelopeOf('p1', { type: 'engine.prune' }), 'b'));
    await pruneListed;
    release();
    await Promise.all([starting, pruning]);
    expect(engine.containers.get(old.id)?.state).toBe('running');
    expect(reported.find((r) => r.commandId === 'p1')!.result.output).toMatchObject({
      containersRemoved: [],
      containersSkipped: [{ containerId: old.id, reason: 'running again' }],
    });
  });

  it('a prune delivered twice runs once', async () => {
    const { engine, executor, reported } = await setup();
    const env = envelopeOf('p1', { type: 'engine.prune' });
    await executor.handle(delivery(env, 'a'));
    await executor.handle(delivery(env, 'b'));
    expect(engine.calls.filter((c) => c === 'pruneDanglingImages')).toHaveLength(1);
    expect(reported).toHaveLength(2);
  });
});

describe('CommandExecutor: disk.audit', () => {
  it('reports statfs of the engine root and the state folder, and the engine’s own usage', async () => {
    const { engine, executor, reported } = await setup({ stateDir: dir });
    engine.rootDir = join(dir, 'no-such-folder');
    await executor.handle(delivery(envelopeOf('d1', { type: 'disk.audit' })));
    const out = reported[0]!.result.output as {
      filesystems: {
        role: string;
        path: string;
        totalBytes?: number;
        usedPercent?: number;
        error?: string;
      }[];
      engine: unknown;
    };
    expect(reported[0]!.result.status).toBe('succeeded');
    expect(out.filesystems[0]).toEqual({
      role: 'engine_root',
      path: join(dir, 'no-such-folder'),
      error: 'cannot read it from the agent: ENOENT',
    });
    expect(out.filesystems[1]).toMatchObject({ role: 'state_dir', path: dir });
    expect(out.filesystems[1]!.totalBytes).toBeGreaterThan(0);
    expect(out.filesystems[1]!.usedPercent).toBeGreaterThanOrEqual(0);
    expect(out.filesystems[1]!.usedPercent).toBeLessThanOrEqual(100);
    expect(out.engine).toMatchObject({
      name: 'fake',
      rootDir: join(dir, 'no-such-folder'),
      images: { count: 1 },
    });
  });
});

describe('CommandExecutor: host.exec', () => {
  const exec = (commandId: string, command: string, timeoutSeconds = 30) =>
    envelopeOf(commandId, { type: 'host.exec', command, timeoutSeconds });

  it('refuses without --allow-exec, saying how to allow it', async () => {
    const { executor, reported } = await setup();
    const marker = join(dir, 'ran');
    await executor.handle(delivery(exec('x1', `touch ${marker}`)));
    expect(reported[0]!.result).toEqual({
      status: 'failed',
      output: { errorType: 'ExecDisabledError' },
      error:
        'remote command execution is disabled on this node: start its agent with --allow-exec (or FLEET_ALLOW_EXEC=true) to allow it',
    });
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
  });

  it('runs /bin/sh -c with the exit status and both outputs', async () => {
    const { executor, reported } = await setup({ allowExec: true });
    await executor.handle(delivery(exec('x1', 'echo out; echo err >&2; exit 7')));
    expect(reported[0]!.result).toMatchObject({
      status: 'succeeded',
      output: {
        stdout: 'out\n',
        stderr: 'err\n',
        exitStatus: 7,
        signal: null,
        timedOut: false,
        truncated: { stdout: false, stderr: false },
      },
    });
  });

  it('runs a command delivered twice once', async () => {
    const { executor, reported } = await setup({ allowExec: true });
    const file = join(dir, 'count');
    const env = exec('x1', `echo run >> ${file}`);
    await executor.handle(delivery(env, 'a'));
    await executor.handle(delivery(env, 'b'));
    await Promise.all([executor.handle(delivery(env, 'c')), executor.handle(delivery(env, 'd'))]);
    expect(await readFile(file, 'utf8')).toBe('run\n');
    expect(reported).toHaveLength(4);
  });

  it('kills the command and what it started at the timeout', async () => {
    const { executor, reported } = await setup({ allowExec: true });
    const child = join(dir, 'child.pid');
    const started = Date.now();
    await executor.handle(delivery(exec('x1', `sleep 30 & echo $! > ${child}; echo waiting; wait`, 1)));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(reported[0]!.result).toMatchObject({
      status: 'succeeded',
      output: { stdout: 'waiting\n', timedOut: true, signal: 'SIGKILL', exitStatus: 137 },
    });
    const pid = Number(await readFile(child, 'utf8'));
    // The background sleep was in the command's process group: gone too.
    await expect.poll(() => alive(pid), { timeout: 2_000 }).toBe(false);
  });

  it('keeps the end of each output past the cap', async () => {
    const { executor, reported } = await setup({ allowExec: true, maxExecOutputBytes: 1024 });
    await executor.handle(
      delivery(exec('x1', 'i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done; echo tail >&2')),
    );
    const out = reported[0]!.result.output as {
      stdout: string;
      stderr: string;
      truncated: { stdout: boolean; stderr: boolean };
    };
    expect(Buffer.byteLength(out.stdout)).toBeLessThanOrEqual(1024);
    expect(out.stdout.endsWith('line-499\n')).toBe(true);
    expect(out.stdout.startsWith('line-')).toBe(false);
    expect(out.truncated).toEqual({ stdout: true, stderr: false });
    expect(out.stderr).toBe('tail\n');
  });
});

/** Running, not a zombie waiting for a parent (where init does not reap, one can linger). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
