import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../../protocol/messages.js';
import { type CommandEnvelope } from '../../../protocol/commands.js';
import { diskAuditOutput, enginePruneOutput, hostExecOutput } from '../../../protocol/agent-api.js';
import { runAgent } from '../../../agent/agent.js';
import { createLogger } from '../../../agent/log.js';
import { statePaths } from '../../../agent/state.js';
import { buildBusyboxImage, ensureBusyboxImage } from '../../harness/images.js';
import { describeWithEngine, engine as dockerClient, uniqueName } from '../../harness/services.js';
import { FakeControlPlane } from './fake-control-plane.js';

/**
 * engine.prune, disk.audit and host.exec run by the whole agent against the real engine (Podman
 * in CI): the prune must leave alone everything the agent did not label, or did not stop.
 */
describeWithEngine('agent maintenance commands and host.exec (stand-in control plane, real engine)', () => {
  const nodeName = uniqueName('agent-maint');
  const cp = new FakeControlPlane();
  const controller = new AbortController();
  const logs: string[] = [];
  const foreign: string[] = [];
  let docker: Docker;
  let image: string;
  let stateDir: string;
  let agent: Promise<void>;
  let n = 0;
  const scratchImage = `localhost/fleet-test:prune-${nodeName}`;

  const envelope = (command: Record<string, unknown>): CommandEnvelope => ({
    commandId: `${nodeName}-cmd-${++n}`,
    nodeId: 'node-e2e',
    issuedAt: new Date().toISOString(),
    command: command as CommandEnvelope['command'],
  });
  const resultOf = async (commandId: string, count = 1) => {
    await expect
      .poll(() => cp.results.filter((r) => r.commandId === commandId).length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(count);
    return cp.results.filter((r) => r.commandId === commandId).at(-1)!.result;
  };
  const start = (instanceId: string, command: string[]) =>
    envelope({
      type: 'container.start',
      spec: {
        instanceId,
        imageId: image,
        name: `${nodeName}-${instanceId}`,
        kind: 'service',
        command,
        env: {},
        ports: [],
        volumes: [],
        labels: {},
        restart: 'no',
      },
    });
  const exists = (id: string) =>
    docker
      .getContainer(id)
      .inspect()
      .then(
        () => true,
        () => false,
      );

  beforeAll(async () => {
    docker = dockerClient();
    image = await ensureBusyboxImage(docker);
    stateDir = await mkdtemp(join(tmpdir(), 'agent-maint-'));
    await cp.start();
    agent = runAgent(
      {
        url: cp.url,
        nodeName,
        labels: {},
        stateDir,
        heartbeatSeconds: 1,
        logLevel: 'debug',
        allowExec: true,
      },
      controller.signal,
      { docker, watchPollMs: 500, logger: createLogger({ level: 'debug', write: (l) => logs.push(l) }) },
    );
    for (const deadline = Date.now() + 20_000; cp.registrations.length === 0;) {
      if (Date.now() > deadline) throw new Error('the agent did not register');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    controller.abort();
    await agent?.catch(() => undefined);
    await cp.stop();
    const leftovers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.node}=${nodeName}`] },
    });
    await Promise.all(
      [...leftovers.map((c) => c.Id), ...foreign].map((id) =>
        docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    await docker
      .getImage(scratchImage)
      .remove({ force: true })
      .catch(() => undefined);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('engine.prune removes the stopped containers it labelled and dangling images, nothing else', async () => {
    // Prepare: one copy running, one exited; a container nobody labelled and one labelled for
    // another node, both stopped; a dangling image (rebuilding a tag leaves the old image untagged).
    const running = start('keep', ['sleep', '600']);
    const exiting = start('gone', ['sh', '-c', 'exit 3']);
    cp.send(running);
    cp.send(exiting);
    const runningId = String((await resultOf(running.commandId)).output['containerId']);
    const exitedId = String((await resultOf(exiting.commandId)).output['containerId']);
    const strangers: Record<string, string>[] = [
      {},
      { [LABELS.managed]: 'true', [LABELS.node]: `${nodeName}-other`, [LABELS.instance]: 'x' },
    ];
    for (const labels of strangers) {
      const c = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: labels });
      foreign.push(c.id);
      await c.start();
      await c.wait();
    }
    await buildBusyboxImage(docker, scratchImage);
    const dangling = (await docker.getImage(scratchImage).inspect()).Id;
    await buildBusyboxImage(docker, scratchImage);
    expect((await docker.getImage(scratchImage).inspect()).Id).not.toBe(dangling);
    // The exit is reported (with its log tail) before anything may remove the container.
    await expect
      .poll(() => cp.events.some((e) => e.type === 'container.exited' && e.instanceId === 'gone'), {
        timeout: 15_000,
      })
      .toBe(true);
    await expect
      .poll(() => readFile(statePaths(stateDir).journal, 'utf8').then((j) => j.includes(exitedId)), {
        timeout: 5_000,
      })
      .toBe(true);

    // Act
    const prune = envelope({ type: 'engine.prune' });
    cp.send(prune);
    const result = await resultOf(prune.commandId);

    // Assess
    expect(result.status).toBe('succeeded');
    const out = enginePruneOutput.parse(result.output);
    expect(out.containersRemoved).toEqual([
      {
        containerId: exitedId,
        name: `${nodeName}-gone`,
        instanceId: 'gone',
        kind: 'service',
        state: 'exited',
      },
    ]);
    expect(out.imagesDeleted.map((id) => id.replace(/^sha256:/, ''))).toContain(
      dangling.replace(/^sha256:/, ''),
    );
    expect(await exists(exitedId)).toBe(false);
    expect(await exists(runningId)).toBe(true);
    for (const id of foreign) expect(await exists(id)).toBe(true);
    // Tagged images stay, used or not.
    await docker.getImage(image).inspect();
    await docker.getImage(scratchImage).inspect();
    // The agent's own removal is not an exit to report.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(cp.events.filter((e) => e.type === 'container.exited' && e.instanceId === 'keep')).toEqual([]);
  });

  it('disk.audit reports the engine root and the state folder (statfs) and the engine’s own usage', async () => {
    const audit = envelope({ type: 'disk.audit' });
    cp.send(audit);
    const result = await resultOf(audit.commandId);
    expect(result.status).toBe('succeeded');
    const out = diskAuditOutput.parse(result.output);
    const [root, state] = out.filesystems;
    const rootDir = (await docker.info()).DockerRootDir as string;
    expect(root).toMatchObject({ role: 'engine_root', path: rootDir });
    expect(root!.totalBytes).toBeGreaterThan(0);
    expect(root!.usedBytes! + root!.freeBytes!).toBeLessThanOrEqual(root!.totalBytes!);
    expect(state).toMatchObject({ role: 'state_dir', path: stateDir });
    expect(state!.usedPercent).toBeGreaterThanOrEqual(0);
    expect(out.engine).toMatchObject({ name: expect.stringMatching(/^(podman|docker)$/), rootDir });
    expect(out.engine!.images.count).toBeGreaterThanOrEqual(2);
    expect(out.engine!.images.sizeBytes).toBeGreaterThan(0);
    expect(out.engine!.containers.count).toBeGreaterThanOrEqual(1);
  });

  it('host.exec runs on the host for real, once per command id, and nothing logs its output', async () => {
    const marker = `marker-${nodeName}`;
    const counter = join(stateDir, 'exec-count');
    const exec = envelope({
      type: 'host.exec',
      command: `echo ${marker}; echo run >> ${counter}; echo to-stderr >&2; exit 4`,
      timeoutSeconds: 10,
    });
    cp.send(exec);
    const first = await resultOf(exec.commandId);
    cp.send(exec);
    const second = await resultOf(exec.commandId, 2);
    expect(first.status).toBe('succeeded');
    expect(hostExecOutput.parse(first.output)).toMatchObject({
      stdout: `${marker}\n`,
      stderr: 'to-stderr\n',
      exitStatus: 4,
      timedOut: false,
    });
    // The redelivery re-reports the stored result: the command ran once.
    expect(second).toEqual(first);
    expect(await readFile(counter, 'utf8')).toBe('run\n');

    const killed = envelope({ type: 'host.exec', command: 'echo started; sleep 60', timeoutSeconds: 1 });
    cp.send(killed);
    expect(hostExecOutput.parse((await resultOf(killed.commandId)).output)).toMatchObject({
      stdout: 'started\n',
      timedOut: true,
      signal: 'SIGKILL',
    });
    expect(logs.some((l) => l.includes('remote command execution is enabled'))).toBe(true);
    expect(logs.join('\n')).not.toContain(marker);
  });
});
