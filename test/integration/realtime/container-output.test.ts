/**
 * Container output on the WebSocket logs channel, with a real agent on the engine: a subscriber
 * that opts in with `?container=<instance_id>` gets the container's last lines, then each new line
 * as the container writes it (written here through `exec` into the container's own stdout, so the
 * test waits on the line itself, not on a clock), within the agent's rate limit; the lease is
 * forgotten once nobody listens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { realtimeKeys } from '../../../functions/core/keys.js';
import { getNode } from '../../../functions/nodes/nodes.js';
import { queryAll } from '../../../functions/ports/store.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { LABELS } from '../../../protocol/messages.js';
import { AgentProcess, removeNodeContainers } from '../../e2e/harness.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../../harness/images.js';
import { describeWithEngine, engine as dockerClient, uniqueName } from '../../harness/services.js';
import { call, eventually } from '../../harness/scripted-agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are loosely typed JSON
type Frame = any;

class Client {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => this.frames.push(JSON.parse(String(data))));
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.ws.on('error', () => undefined);
  }
  /** Output lines received so far, in order (tail frames included). */
  lines(): string[] {
    return this.frames.filter((f) => f.type === 'output').flatMap((f) => f.lines as string[]);
  }
  close() {
    this.ws.close();
    return this.closed;
  }
}

describeWithEngine('container output on /ws/logs (real agent on the engine)', () => {
  const nodeName = uniqueName('ws-output');
  let rt: Runtime;
  let agent: AgentProcess;
  let stateDir: string;
  let docker: Docker;
  let nodeId: string;
  let instanceId: string;
  let containerId: string;
  const ws = (query: string) => new Client(`${rt.url.replace(/^http/, 'ws')}/ws/logs/${nodeId}?${query}`);
  /** Writes to the container's own stdout: what its main process would print. */
  const print = async (script: string) => {
    const exec = await docker.getContainer(containerId).exec({
      Cmd: ['sh', '-c', `{ ${script}; } > /proc/1/fd/1`],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({});
    await new Promise((resolve) => {
      stream.on('end', resolve);
      stream.resume();
    });
  };

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: 'SILENT',
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'false',
        COMMAND_WAIT_MS: '20000',
        WS_PUSH_INTERVAL_SECONDS: '1',
      },
    });
    stateDir = await mkdtemp(join(tmpdir(), 'fleet-ws-output-'));
    agent = new AgentProcess({
      url: rt.url,
      name: nodeName,
      stateDir,
      heartbeatSeconds: 1,
      env: { ...process.env, FLEET_API_KEY: '', FLEET_URL: '', FLEET_NODE_NAME: '' },
    });
    nodeId = await agent.start();
    const started = await call(rt.url, 'POST', `/containers/${BUSYBOX_IMAGE}/start`, {
      count: 1,
      node_id: nodeId,
      command: ['sh', '-c', "echo before-1; echo before-2; trap 'exit 0' TERM; while true; do sleep 1; done"],
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    instanceId = (started.body as { started: string[] }).started[0]!;
    const [c] = await docker.listContainers({ filters: { label: [`${LABELS.instance}=${instanceId}`] } });
    containerId = c!.Id;
    // The node reports it (the subscription checks the node has it).
    await eventually(async () => {
      const node = await getNode(rt.ctx, nodeId);
      if (!node?.containerStats[instanceId]) throw new Error('not reported yet');
    }, 30_000);
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGTERM');
    if (docker) await removeNodeContainers(docker, [nodeName]);
    await rt?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  }, 60_000);

  it('refuses a container the node does not have, and a malformed id', async () => {
    expect((await ws('container=no-such-container').closed).code).toBe(4404);
    expect((await ws('container=bad%20id%2F..').closed).code).toBe(4400);
    // Without the opt-in, the channel is the node's log lines only.
    const plain = ws('');
    await eventually(async () => {
      if (!plain.frames.length) throw new Error('no frame yet');
    });
    expect(plain.frames.map((f) => f.type)).toEqual(['log']);
    await plain.close();
  });

  it('sends the last lines, then each new line live', async () => {
    const client = ws(`container=${instanceId}`);
    const tail = await eventually(async () => {
      const f = client.frames.find((x) => x.type === 'output');
      if (!f) throw new Error('no output frame yet');
      return f;
    }, 30_000);
    expect(tail).toMatchObject({ type: 'output', node_id: nodeId, instance_id: instanceId, tail: true });
    expect(tail.lines).toEqual(['before-1', 'before-2']);

    await print('echo live-one; echo live-two');
    await eventually(async () => {
      if (!client.lines().includes('live-two'))
        throw new Error(
          JSON.stringify(client.frames) + agent.lines.filter((l) => /follow|event|warn/i.test(l)).join('\n'),
        );
    }, 20_000);
    expect(client.lines(), JSON.stringify(client.frames)).toEqual([
      'before-1',
      'before-2',
      'live-one',
      'live-two',
    ]);
    const live = client.frames.filter((f) => f.type === 'output' && !f.tail);
    for (const f of live) expect(f).toMatchObject({ node_id: nodeId, instance_id: instanceId, dropped: 0 });

    // A second subscriber gets the tail (now with the live lines), and both get what follows.
    const second = ws(`container=${instanceId}`);
    await eventually(async () => {
      if (!second.frames.some((f) => f.tail)) throw new Error('no tail yet');
    }, 30_000);
    expect(second.frames.find((f) => f.tail).lines).toEqual(['before-1', 'before-2', 'live-one', 'live-two']);
    await print('echo live-three');
    for (const c of [client, second])
      await eventually(async () => {
        if (!c.lines().includes('live-three')) throw new Error(JSON.stringify(c.lines()));
      }, 20_000);
    expect(client.lines().filter((l) => l === 'live-three')).toHaveLength(1);
    await client.close();
    await second.close();
  }, 90_000);

  it('keeps to the rate limit: a burst arrives in frames of at most 50 lines, the rest counted as dropped', async () => {
    const client = ws(`container=${instanceId}`);
    await eventually(async () => {
      if (!client.frames.some((f) => f.tail)) throw new Error('no tail yet');
    }, 30_000);
    await print('seq 1 3000; echo burst-end');
    const counted = () =>
      client.frames
        .filter((f) => f.type === 'output' && !f.tail)
        .reduce((n, f) => n + f.lines.length + f.dropped, 0);
    await eventually(async () => {
      if (counted() < 3001) throw new Error(`${counted()} of 3001`);
    }, 30_000);
    const live = client.frames.filter((f) => f.type === 'output' && !f.tail);
    expect(counted()).toBe(3001);
    for (const f of live) expect(f.lines.length).toBeLessThanOrEqual(50);
    // Whatever was kept came in the order it was written.
    const numbers = live
      .flatMap((f) => f.lines as string[])
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(live.some((f) => f.dropped > 0)).toBe(true);
    await client.close();

    // Nobody listens: the next push forgets the lease, so the agent's follow runs out.
    await eventually(async () => {
      const follows = await queryAll(rt.ctx.store, realtimeKeys.followPk);
      if (follows.length) throw new Error(`${follows.length} follows left`);
    }, 15_000);
  }, 90_000);
});
