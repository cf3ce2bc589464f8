import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../../protocol/messages.js';
import { type CommandEnvelope } from '../../../protocol/commands.js';
import { runAgent } from '../../../agent/agent.js';
import { createLogger } from '../../../agent/log.js';
import { ensureBusyboxImage } from '../../harness/images.js';
import { describeWithEngine, engine as dockerClient, uniqueName } from '../../harness/services.js';
import { FakeControlPlane } from './fake-control-plane.js';

/** The whole agent (runAgent) against the stand-in control plane and the real engine. */
describeWithEngine('agent end to end (stand-in control plane, real engine)', () => {
  const nodeName = uniqueName('agent-e2e');
  const cp = new FakeControlPlane();
  const controller = new AbortController();
  const logs: string[] = [];
  let docker: Docker;
  let image: string;
  let stateDir: string;
  let agent: Promise<void>;
  let n = 0;

  const envelope = (command: CommandEnvelope['command']): CommandEnvelope => ({
    commandId: `cmd-${++n}`,
    nodeId: 'node-e2e',
    issuedAt: new Date().toISOString(),
    command,
  });
  const resultOf = async (commandId: string, count = 1) => {
    await expect
      .poll(() => cp.results.filter((r) => r.commandId === commandId).length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(count);
    return cp.results.filter((r) => r.commandId === commandId).at(-1)!.result;
  };

  beforeAll(async () => {
    docker = dockerClient();
    image = await ensureBusyboxImage(docker);
    stateDir = await mkdtemp(join(tmpdir(), 'agent-e2e-'));
    await cp.start();
    agent = runAgent(
      { url: cp.url, nodeName, labels: { zone: 'test' }, stateDir, heartbeatSeconds: 1, logLevel: 'debug' },
      controller.signal,
      { docker, watchPollMs: 1_000, logger: createLogger({ level: 'debug', write: (l) => logs.push(l) }) },
    );
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
      leftovers.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    if (cp.invalid.length > 0) console.log('invalid bodies', cp.invalid);
  });

  it('registers with facts from the collectors and stores its credential', async () => {
    await expect.poll(() => cp.registrations.length, { timeout: 20_000 }).toBe(1);
    const r = cp.registrations[0]!;
    // A GPU runtime only where the engine has one: the Docker Engine pass registers a stand-in `nvidia`.
    const engineInfo = (await docker.info()) as { Runtimes?: Record<string, unknown> };
    const podman = ((await docker.version()).Components ?? []).some((c) => /podman/i.test(c.Name));
    const gpuRuntime = !podman && Object.keys(engineInfo.Runtimes ?? {}).includes('nvidia');
    expect(r).toMatchObject({ nodeName, labels: { zone: 'test' }, engine: { gpuRuntime } });
    expect(r.cpuCount).toBeGreaterThan(0);
    expect(r.memoryMb).toBeGreaterThan(0);
    // Written right after the response arrives.
    const stored = () =>
      readFile(join(stateDir, 'registration.json'), 'utf8').then(JSON.parse, () => null) as Promise<unknown>;
    await expect.poll(stored, { timeout: 5_000 }).toMatchObject({ nodeId: 'node-e2e', token: 'token-1' });
    await expect.poll(() => cp.heartbeats.length, { timeout: 10_000 }).toBeGreaterThan(0);
  });

  it('starts a container once even when the command is delivered twice, and acks both deliveries', async () => {
    const start = envelope({
      type: 'container.start',
      spec: {
        instanceId: 'svc-1',
        imageId: image,
        name: `${nodeName}-svc-1`,
        kind: 'service',
        command: ['sh', '-c', 'echo serving; while true; do sleep 1; done'],
        env: {},
        ports: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp' }],
        volumes: [],
        memoryLimitMb: 64,
        labels: {},
        restart: 'no',
      },
    });
    cp.send(start);
    const first = await resultOf(start.commandId);
    cp.send(start);
    const second = await resultOf(start.commandId, 2);
    expect(first).toMatchObject({ status: 'succeeded', output: { reused: false, state: 'running' } });
    expect(second).toEqual(first);
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.instance}=svc-1`, `${LABELS.node}=${nodeName}`] },
    });
    expect(containers).toHaveLength(1);
    await expect.poll(() => cp.acks.length, { timeout: 5_000 }).toBe(2);

    // The heartbeat carries it, with stats.
    await expect
      .poll(
        () => cp.heartbeats.at(-1)?.containers.find((c) => c.instanceId === 'svc-1')?.stats?.memoryLimitMb,
        { timeout: 10_000 },
      )
      .toBe(64);
  });

  it('reports a run that exits with its code and log tail', async () => {
    const start = envelope({
      type: 'container.start',
      spec: {
        instanceId: 'run-1',
        imageId: image,
        name: `${nodeName}-run-1`,
        kind: 'run',
        command: ['sh', '-c', 'echo training; sleep 1; echo diverged >&2; exit 5'],
        env: {},
        ports: [],
        volumes: [],
        labels: {},
        restart: 'no',
      },
    });
    cp.send(start);
    expect((await resultOf(start.commandId)).status).toBe('succeeded');
    await expect
      .poll(() => cp.events.find((e) => e.type === 'container.exited' && e.instanceId === 'run-1'), {
        timeout: 15_000,
      })
      .toMatchObject({
        kind: 'run',
        exitCode: 5,
        logTail: 'training\ndiverged\n',
      });
  });

  it('logs, stop (no exit event: the agent caused it) and remove', async () => {
    const logsCmd = envelope({ type: 'container.logs', instanceId: 'svc-1', tail: 10 });
    cp.send(logsCmd);
    expect(await resultOf(logsCmd.commandId)).toMatchObject({
      status: 'succeeded',
      output: { logs: 'serving\n' },
    });

    const stop = envelope({ type: 'container.stop', instanceId: 'svc-1', timeoutSeconds: 1 });
    cp.send(stop);
    expect(await resultOf(stop.commandId)).toMatchObject({
      status: 'succeeded',
      output: { found: true, state: 'exited' },
    });
    const remove = envelope({ type: 'container.remove', instanceId: 'svc-1', force: false });
    cp.send(remove);
    expect(await resultOf(remove.commandId)).toMatchObject({
      status: 'succeeded',
      output: { removed: true },
    });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(cp.events.filter((e) => e.type === 'container.exited' && e.instanceId === 'svc-1')).toEqual([]);
  });

  it('fails a disk limit it cannot enforce, explicitly', async () => {
    const start = envelope({
      type: 'container.start',
      spec: {
        instanceId: 'disk-1',
        imageId: image,
        name: `${nodeName}-disk-1`,
        kind: 'service',
        env: {},
        ports: [],
        volumes: [],
        labels: {},
        restart: 'no',
        diskLimitGb: 5,
      },
    });
    cp.send(start);
    const result = await resultOf(start.commandId);
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/diskLimitGb=5 cannot be enforced/);
  });

  it('runs an inference task on a model server container and reports progress, result and files', async () => {
    // A "model server" from busybox: httpd with a CGI that echoes the request and returns one image.
    const cgi = [
      '#!/bin/sh',
      'printf "Content-Type: application/json\\r\\n\\r\\n"',
      'body=$(cat)',
      'echo "{\\"echo\\":$body,\\"images\\":[{\\"name\\":\\"out.png\\",\\"contentType\\":\\"image/png\\",\\"base64\\":\\"iVBORw0KGgo=\\"}]}"',
    ].join('\n');
    const run = envelope({
      type: 'task.run',
      taskId: 'task-1',
      model: 'tiny-diffusion',
      server: {
        instanceId: 'model-1',
        imageId: image,
        name: `${nodeName}-model-1`,
        kind: 'model',
        command: [
          'sh',
          '-c',
          'mkdir -p /www/cgi-bin && echo "$CGI" > /www/cgi-bin/generate && /bin/busybox chmod +x /www/cgi-bin/generate && exec httpd -f -p 8000 -h /www',
        ],
        env: { CGI: cgi },
        ports: [{ containerPort: 8000, hostPort: 0, protocol: 'tcp' }],
        volumes: [],
        labels: {},
        restart: 'no',
      },
      request: { path: '/cgi-bin/generate', body: { prompt: 'a cat' } },
      timeoutSeconds: 60,
    });
    cp.send(run);
    expect(await resultOf(run.commandId)).toMatchObject({
      status: 'succeeded',
      output: { taskId: 'task-1', accepted: true },
    });
    await expect
      .poll(() => cp.events.find((e) => e.type === 'task.finished' && e.taskId === 'task-1'), {
        timeout: 20_000,
      })
      .toMatchObject({
        status: 'completed',
        result: { echo: { prompt: 'a cat' } },
        files: [{ name: 'out.png', contentType: 'image/png', base64: 'iVBORw0KGgo=' }],
      });
    const progress = cp.events
      .filter((e) => e.type === 'task.progress' && e.taskId === 'task-1')
      .map((e) => (e as { progress: number }).progress);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(100);
    // The server stays loaded and the heartbeat says so.
    await expect
      .poll(() => cp.heartbeats.at(-1)?.loadedModels, { timeout: 10_000 })
      .toEqual(['tiny-diffusion']);
  });

  it('registers again when its token is refused, and carries on', async () => {
    cp.token = 'rotated-by-the-server';
    await expect.poll(() => cp.registrations.length, { timeout: 15_000 }).toBe(2);
    const logsCmd = envelope({ type: 'task.cancel', taskId: 'nothing-running' });
    cp.send(logsCmd);
    expect(await resultOf(logsCmd.commandId)).toMatchObject({
      status: 'succeeded',
      output: { cancelled: false },
    });
    expect(cp.unauthorized.length).toBeGreaterThan(0);
  });

  it('stops on abort and leaves running containers alone', async () => {
    const start = envelope({
      type: 'container.start',
      spec: {
        instanceId: 'keep',
        imageId: image,
        name: `${nodeName}-keep`,
        kind: 'service',
        command: ['sleep', '600'],
        env: {},
        ports: [],
        volumes: [],
        labels: {},
        restart: 'no',
      },
    });
    cp.send(start);
    const { output } = await resultOf(start.commandId);
    controller.abort();
    await agent;
    const info = await docker.getContainer(String(output['containerId'])).inspect();
    expect(info.State.Running).toBe(true);
    expect(cp.invalid).toEqual([]);
    expect(logs.some((l) => l.includes('"message":"agent stopped"'))).toBe(true);
    // It told the control plane once, on its way out.
    expect(cp.stopping).toBe(1);
  });
});
