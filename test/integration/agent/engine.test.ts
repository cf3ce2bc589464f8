import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS, type AgentEvent } from '../../../protocol/messages.js';
import { containerSpec, type ContainerSpec } from '../../../protocol/commands.js';
import { DockerEngine } from '../../../agent/engine/docker.js';
import { DiskLimitUnsupportedError, EngineError, GpuUnsupportedError } from '../../../agent/engine/errors.js';
import { ensureStarted } from '../../../agent/engine/startup.js';
import { CommandJournal } from '../../../agent/journal.js';
import { silentLogger } from '../../../agent/log.js';
import { ExitWatcher } from '../../../agent/watcher.js';
import { ensureBusyboxImage } from '../../harness/images.js';
import { describeWithEngine, engine as dockerClient, uniqueName } from '../../harness/services.js';

/**
 * The engine driver against a real Docker-compatible engine (Podman here). Every container
 * carries a node name unique to this run, so parallel suites and leftovers never mix.
 */
describeWithEngine('agent engine driver', () => {
  const nodeName = uniqueName('agent-it');
  let docker: Docker;
  let driver: DockerEngine;
  let image: string;
  let stateDir: string;

  const spec = (overrides: Partial<ContainerSpec> & { instanceId: string }): ContainerSpec =>
    containerSpec.parse({
      imageId: image,
      name: `${nodeName}-${overrides.instanceId}`,
      kind: 'service',
      command: ['sh', '-c', 'echo started; while true; do sleep 1; done'],
      ...overrides,
    });

  beforeAll(async () => {
    docker = dockerClient();
    image = await ensureBusyboxImage(docker);
    driver = new DockerEngine(docker, { nodeName, logger: silentLogger, recreateStopSeconds: 1 });
    stateDir = await mkdtemp(join(tmpdir(), 'agent-it-'));
  });

  afterAll(async () => {
    const leftovers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.node}=${nodeName}`] },
    });
    await Promise.all(
      leftovers.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('reports what the engine can do', async () => {
    const caps = await driver.capabilities();
    expect(['docker', 'podman']).toContain(caps.name);
    expect(caps.version).toMatch(/^\d+\./);
    // Podman's compat API ignores DeviceRequests: the driver must not claim GPU support there.
    if (caps.name === 'podman' && !caps.runtimes.includes('nvidia')) expect(caps.gpuRuntime).toBe(false);
  });

  it('creates and starts with limits, labels and an engine-picked port, all visible through inspect', async () => {
    // Prepare
    const s = spec({
      instanceId: 'limits',
      cpuLimit: 0.5,
      memoryLimitMb: 64,
      env: { GREETING: 'hi' },
      ports: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp' }],
      labels: { team: 'ml' },
      restart: 'on-failure',
    });
    // Act
    const c = await driver.createAndStart(s, { commandId: 'cmd-limits' });
    // Assess
    const info = await docker.getContainer(c.id).inspect();
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info.HostConfig.RestartPolicy?.Name).toBe('on-failure');
    expect(info.Config.Env).toContain('GREETING=hi');
    expect(info.Config.Labels).toMatchObject({
      team: 'ml',
      [LABELS.managed]: 'true',
      [LABELS.node]: nodeName,
      [LABELS.instance]: 'limits',
      [LABELS.image]: image,
      [LABELS.kind]: 'service',
      [LABELS.command]: 'cmd-limits',
    });
    expect(c.running).toBe(true);
    expect(c.ports).toHaveLength(1);
    expect(c.ports[0]).toMatchObject({ containerPort: 8080, protocol: 'tcp' });
    expect(c.ports[0]!.hostPort).toBeGreaterThan(0);
    expect(String(c.ports[0]!.hostPort)).toBe(info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);

    const stats = await driver.stats(c.id);
    expect(stats.memoryLimitMb).toBe(64);
    expect(stats.memoryUsageMb).toBeGreaterThanOrEqual(0);
  });

  it('start is idempotent by instance label: a second start reuses the container', async () => {
    const s = spec({ instanceId: 'idem' });
    const first = await ensureStarted(driver, s);
    const second = await ensureStarted(driver, s);
    expect(first.reused).toBe(false);
    expect(second.reused).toBe(true);
    expect(second.container.id).toBe(first.container.id);

    // Stopped (e.g. the node rebooted): start reuses and starts it again.
    await driver.stop(first.container.id, 1);
    const third = await ensureStarted(driver, s);
    expect(third).toMatchObject({ reused: true, container: { id: first.container.id, running: true } });

    // Created but never started (the agent died between create and start): same.
    const created = await docker.createContainer({
      name: `${nodeName}-half`,
      Image: image,
      Cmd: ['sleep', '600'],
      Labels: {
        [LABELS.managed]: 'true',
        [LABELS.node]: nodeName,
        [LABELS.instance]: 'half',
        [LABELS.kind]: 'service',
      },
    });
    const resumed = await ensureStarted(driver, spec({ instanceId: 'half' }));
    expect(resumed).toMatchObject({ reused: true, container: { id: created.id, running: true } });

    const mine = await driver.list();
    expect(mine.filter((c) => c.instanceId === 'idem')).toHaveLength(1);
  });

  it('updates limits; where the engine has no update route it recreates with the same name, labels and port', async () => {
    const before = await driver.createAndStart(
      spec({
        instanceId: 'update',
        cpuLimit: 0.5,
        memoryLimitMb: 64,
        ports: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp' }],
      }),
      { commandId: 'cmd-create' },
    );
    const outcome = await driver.updateLimits(
      before.id,
      { memoryLimitMb: 96, cpuLimit: 1 },
      { commandId: 'cmd-update' },
    );
    const info = await docker.getContainer(outcome.container.id).inspect();
    expect(info.HostConfig.Memory).toBe(96 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(1_000_000_000);
    expect(outcome.container.running).toBe(true);
    expect(outcome.container.name).toBe(before.name);
    expect(outcome.container.instanceId).toBe('update');
    if ((await driver.capabilities()).name === 'podman') {
      expect(outcome.method).toBe('recreate'); // POST /containers/{id}/update is 404 on Podman 4.3
      expect(outcome.container.id).not.toBe(before.id);
      expect(info.Config.Labels[LABELS.command]).toBe('cmd-update');
      expect(outcome.container.ports).toEqual(before.ports);
      await expect(docker.getContainer(before.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    }
    expect((await driver.list()).filter((c) => c.instanceId === 'update')).toHaveLength(1);
  });

  it('reads logs (tail, stdout and stderr demultiplexed), stops and removes', async () => {
    const c = await driver.createAndStart(
      spec({
        instanceId: 'logs',
        command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 600'],
      }),
    );
    await expect.poll(() => driver.logs(c.id, 100), { timeout: 10_000 }).toContain('oops');
    // Written in one burst: the engine's stamps cannot order the streams, so they are kept apart.
    const tail = await driver.logTail(c.id, 3);
    expect(tail.text.trim().split('\n')).toEqual(['line 4', 'line 5', 'oops']);
    expect(tail.stdout.trim().split('\n')).toEqual(['line 3', 'line 4', 'line 5']);
    expect(tail.stderr).toBe('oops\n');
    expect(await driver.logs(c.id, 3)).toBe(tail.text);

    await driver.stop(c.id, 1);
    const stopped = await driver.inspect(c.id);
    expect(stopped.running).toBe(false);
    expect(stopped.state).toBe('exited');
    await driver.stop(c.id, 1); // already stopped: no error
    await driver.remove(c.id, false);
    await expect(driver.inspect(c.id)).rejects.toBeInstanceOf(EngineError);
    await driver.remove(c.id, true); // gone already: no error
    expect(await driver.findByInstance('logs')).toBeNull();
  });

  it('refuses a disk limit the storage driver cannot enforce, creating nothing', async () => {
    const caps = await driver.capabilities();
    if (caps.diskLimit.supported) return; // this engine may enforce it; nothing to refuse
    await expect(driver.createAndStart(spec({ instanceId: 'disk', diskLimitGb: 1 }))).rejects.toBeInstanceOf(
      DiskLimitUnsupportedError,
    );
    await expect(driver.createAndStart(spec({ instanceId: 'disk', diskLimitGb: 1 }))).rejects.toThrow(
      /diskLimitGb=1 cannot be enforced/,
    );
    expect(await driver.findByInstance('disk')).toBeNull();
  });

  it('refuses GPUs when the engine has no GPU runtime', async () => {
    if ((await driver.capabilities()).gpuRuntime) return;
    await expect(driver.createAndStart(spec({ instanceId: 'gpu', gpus: 'all' }))).rejects.toBeInstanceOf(
      GpuUnsupportedError,
    );
    expect(await driver.findByInstance('gpu')).toBeNull();
  });

  it('refuses a name taken by a container that is not this instance', async () => {
    const foreign = await docker.createContainer({
      name: `${nodeName}-taken`,
      Image: image,
      Cmd: ['sleep', '1'],
      Labels: { [LABELS.node]: nodeName },
    });
    await expect(
      driver.createAndStart(spec({ instanceId: 'other', name: `${nodeName}-taken` })),
    ).rejects.toThrow(/already used by another container/);
    await foreign.remove({ force: true });
  });

  it('detects exits (event stream and scan) and reports exit code and last log lines, once', async () => {
    // Prepare
    const journal = await CommandJournal.open(join(stateDir, 'journal.json'));
    const events: AgentEvent[] = [];
    const send = (e: AgentEvent, onDelivered?: () => Promise<void> | void): void => {
      events.push(e);
      void onDelivered?.();
    };
    const watcher = new ExitWatcher({
      engine: driver,
      journal,
      events: { send },
      logger: silentLogger,
      pollMs: 60_000,
    });
    const controller = new AbortController();
    const running = watcher.run(controller.signal);
    await new Promise((r) => setTimeout(r, 500)); // let the event stream open
    // Act
    const c = await driver.createAndStart(
      spec({
        instanceId: 'exits',
        kind: 'run',
        command: ['sh', '-c', 'for i in $(seq 1 60); do echo step $i; done; echo failing >&2; exit 3'],
      }),
    );
    // Assess: the die event arrives well before the 60 s scan
    const mine = () => events.filter((e) => e.type === 'container.exited' && e.instanceId === 'exits');
    await expect.poll(() => mine().length, { timeout: 15_000 }).toBe(1);
    expect(mine()[0]).toMatchObject({
      type: 'container.exited',
      instanceId: 'exits',
      kind: 'run',
      exitCode: 3,
    });
    const tail = (mine()[0] as { logTail: string }).logTail.trim().split('\n');
    expect(tail).toHaveLength(50);
    // The error line ends the tail on every engine, whatever order the engine stamped it in.
    expect(tail.at(-1)).toBe('failing');
    expect(tail[0]).toBe('step 12');
    expect(tail.slice(0, -1)).toEqual(Array.from({ length: 49 }, (_, i) => `step ${i + 12}`));

    // A restarted agent (fresh watcher, same journal) scans and does not report it again.
    controller.abort();
    await running;
    await journal.flush();
    const again: AgentEvent[] = [];
    const restarted = new ExitWatcher({
      engine: driver,
      journal: await CommandJournal.open(join(stateDir, 'journal.json')),
      events: { send: (e) => again.push(e) },
      logger: silentLogger,
    });
    await restarted.reconcile();
    expect(again).toEqual([]);
    expect((await driver.inspect(c.id)).exitCode).toBe(3);
  });

  it('a scan finds exits that happened while no agent watched', async () => {
    const c = await driver.createAndStart(
      spec({ instanceId: 'offline-exit', command: ['sh', '-c', 'echo bye; exit 4'] }),
    );
    await driver.wait(c.id);
    const events: AgentEvent[] = [];
    const watcher = new ExitWatcher({
      engine: driver,
      journal: await CommandJournal.open(join(stateDir, 'journal-2.json')),
      events: { send: (e) => events.push(e) },
      logger: silentLogger,
    });
    await watcher.reconcile();
    expect(
      events.filter((e) => e.type === 'container.exited' && e.instanceId === 'offline-exit'),
    ).toMatchObject([{ exitCode: 4, kind: 'service', logTail: 'bye\n' }]);
  });
});
