import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import { eventHandlers } from '../../../functions/event-handlers.js';
import { dispatchCommand, getCommand } from '../../../functions/nodes/commands.js';
import { getNode } from '../../../functions/nodes/nodes.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  // The embedded runtime, whatever the shell points at.
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '1',
  COMMAND_WAIT_MS: '3000',
};

describe('agent protocol over HTTP (embedded runtime)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
  });
  afterAll(async () => {
    await rt?.stop();
  });

  // As stored: the node's records (META, liveness, metrics) read through the nodes module.
  const storedNode = async (nodeId: string) => (await getNode(rt.ctx, nodeId))!;

  it('registers idempotently by node name: same node id, a fresh token, the old token refused', async () => {
    // Prepare
    const first = new ScriptedAgent(rt.url, 'agx0');
    const again = new ScriptedAgent(rt.url, 'agx0');
    // Act
    const a = await first.register();
    const b = await again.register();
    // Assess
    expect(b.nodeId).toBe(a.nodeId);
    expect(b.token).not.toBe(a.token);
    expect(a.channel).toEqual({ type: 'http' });
    expect(a.heartbeatIntervalSeconds).toBe(1);
    expect((await first.heartbeat()).status).toBe(401);
    expect((await again.heartbeat()).status).toBe(200);
    const stored = await storedNode(a.nodeId);
    expect(stored.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(b.token.split('.')[1]!);
    const nodes = (await call(rt.url, 'GET', '/api/nodes/')).body.nodes as { name: string }[];
    expect(nodes.filter((n) => n.name === 'agx0')).toHaveLength(1);
  });

  it('refuses agent calls without a valid token, in the FastAPI error shape', async () => {
    const beat = {
      metrics: { cpuPercent: 1, memoryUsedMb: 1, memoryTotalMb: 2, diskUsedGb: 1, diskTotalGb: 2 },
      containers: [],
    };
    const none = await call(rt.url, 'POST', '/agent/heartbeat', beat);
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ detail: 'Missing agent token' });
    const forged = await call(rt.url, 'GET', '/agent/commands?wait=0', undefined, {
      authorization: 'Bearer someone.else',
    });
    expect(forged.status).toBe(401);
    expect(forged.body).toEqual({ detail: 'Invalid agent token' });
  });

  it('validates the registration body (422, loc/msg/type)', async () => {
    const res = await call(rt.url, 'POST', '/agent/register', {
      nodeName: 'bad name!',
      hostname: 'x',
      arch: 'arm64',
      os: 'linux',
      cpuCount: 0,
      memoryMb: 1,
      diskGb: 1,
      agentVersion: '1',
    });
    expect(res.status).toBe(422);
    const locs = (res.body.detail as { loc: string[] }[]).map((d) => d.loc.join('.'));
    expect(locs).toEqual(expect.arrayContaining(['body.nodeName', 'body.cpuCount']));
  });

  it("a killed agent's commands come back at once: its open long poll takes none, a re-registration releases what it took", async () => {
    const agent = new ScriptedAgent(rt.url, 'killed-node');
    await agent.register();
    // A long poll whose client goes away (the agent killed) before any command arrives.
    const gone = new AbortController();
    const dead = fetch(`${rt.url}/agent/commands?wait=20`, { headers: agent.auth, signal: gone.signal });
    dead.catch(() => undefined);
    // Nothing outside the server tells when the poll waits there: give it a moment to arrive.
    await new Promise((r) => setTimeout(r, 300));
    gone.abort();
    await dead.catch(() => undefined);
    const first = await dispatchCommand(rt.ctx, agent.nodeId, {
      type: 'container.logs',
      instanceId: 'a',
      tail: 1,
    });
    const [got] = await agent.poll(5);
    expect(got?.envelope.commandId).toBe(first);
    // Taken and never acknowledged (the agent died with it): its restart registers, and gets it again.
    expect(await agent.poll(0)).toEqual([]);
    await agent.register();
    const [again] = await agent.poll(5);
    expect(again?.envelope.commandId).toBe(first);
    expect((await agent.ack([again!.receiptHandle])).status).toBe(200);
    expect(await agent.poll(0)).toEqual([]);
  });

  it('a command delivered COMMAND_MAX_RECEIVES times without a result ends failed with the reason', async () => {
    const agent = new ScriptedAgent(rt.url, 'dying-node');
    await agent.register();
    const commandId = await dispatchCommand(rt.ctx, agent.nodeId, {
      type: 'container.restart',
      instanceId: 'x',
      timeoutSeconds: 1,
    });
    // Each delivery's agent dies before reporting; each restart registers and is handed it again.
    let deliveries = 0;
    for (let i = 0; i < 8; i++) {
      deliveries += (await agent.poll(0)).length;
      await agent.register();
    }
    expect(deliveries).toBe(5);
    expect(await agent.poll(0)).toEqual([]);
    const stored = (await call(rt.url, 'GET', `/commands/${commandId}`)).body;
    expect(stored).toMatchObject({ status: 'failed', error: expect.stringMatching(/delivered 5 times/) });
  });

  it('delivers commands on the long-poll, redelivers unacked ones, and takes each result once', async () => {
    // Prepare
    const agent = new ScriptedAgent(rt.url, 'cmd-node');
    await agent.register();
    const commandId = await dispatchCommand(rt.ctx, agent.nodeId, {
      type: 'container.logs',
      instanceId: 'abc',
      tail: 10,
    });
    // Act: a long poll that returns as soon as the message is there
    const [got] = await agent.poll(5);
    // Assess
    expect(got!.envelope).toMatchObject({
      commandId,
      nodeId: agent.nodeId,
      command: { type: 'container.logs', instanceId: 'abc' },
    });
    const first = await agent.result(commandId, { status: 'succeeded', output: { logs: 'hello' } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ command_id: commandId, status: 'succeeded', duplicate: false });
    const second = await agent.result(commandId, { status: 'failed', error: 'ran twice' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({
      status: 'succeeded',
      output: { logs: 'hello' },
      error: null,
      duplicate: true,
    });
    expect((await getCommand(rt.ctx, commandId))!.status).toBe('succeeded');
    const lookup = await call(rt.url, 'GET', `/commands/${commandId}`);
    expect(lookup.body).toMatchObject({
      command_id: commandId,
      node_id: agent.nodeId,
      type: 'container.logs',
      status: 'succeeded',
    });
    expect((await call(rt.url, 'GET', '/commands/nope')).status).toBe(404);

    // Acknowledged: gone from the queue.
    expect((await agent.ack([got!.receiptHandle])).status).toBe(200);
    expect(await agent.poll(0)).toEqual([]);
    // A result for another node's command is not found.
    const other = new ScriptedAgent(rt.url, 'cmd-other');
    await other.register();
    expect((await other.result(commandId, { status: 'succeeded' })).status).toBe(404);
  });

  it('marks a silent node offline on read, flips it with the sweep, and back online on its next heartbeat', async () => {
    // Prepare
    const agent = new ScriptedAgent(rt.url, 'flaky');
    await agent.register();
    expect((await agent.heartbeat()).status).toBe(200);
    const statusOf = async () =>
      ((await call(rt.url, 'GET', '/api/nodes/')).body.nodes as { id: string; status: string }[]).find(
        (n) => n.id === agent.nodeId,
      )!.status;
    expect(await statusOf()).toBe('online');
    const offline: unknown[] = [];
    eventHandlers['node.offline'] = async (e) => void offline.push(e);
    try {
      // Act: silence past NODE_OFFLINE_AFTER_SECONDS
      await new Promise((r) => setTimeout(r, 1300));
      // Assess: computed on read, before any sweep
      expect(await statusOf()).toBe('offline');
      expect((await storedNode(agent.nodeId)).status).toBe('online');
      await emit(rt.ctx, { type: 'nodes.sweep' });
      await eventually(async () => expect((await storedNode(agent.nodeId)).status).toBe('offline'));
      await eventually(async () =>
        expect(offline).toContainEqual(
          expect.objectContaining({ type: 'node.offline', nodeId: agent.nodeId }),
        ),
      );
      // Back
      expect((await agent.heartbeat()).status).toBe(200);
      expect(await statusOf()).toBe('online');
      expect((await storedNode(agent.nodeId)).status).toBe('online');
    } finally {
      delete eventHandlers['node.offline'];
    }
  });

  it('serves the Nodes API shapes and JetPack info', async () => {
    const jetson = new ScriptedAgent(rt.url, 'orin1', {
      jetson: { l4t: '35.4.1', jetpack: '5.1.2', cuda: '11.4', cudnn: '8.6.0', model: 'AGX Orin' },
      address: '192.168.1.182',
    });
    await jetson.register();
    await jetson.heartbeat();
    const list = await call(rt.url, 'GET', '/api/nodes/');
    expect(list.status).toBe(200);
    const node = (list.body.nodes as Record<string, unknown>[]).find((n) => n.id === jetson.nodeId)!;
    expect(node).toMatchObject({
      hostname: 'orin1.local',
      ip: '192.168.1.182',
      status: 'online',
      cluster: 'vision',
      cpu: 20,
      memory: 25,
      disk: 30,
    });
    expect(Object.keys(node)).toEqual(
      expect.arrayContaining([
        'id',
        'hostname',
        'ip',
        'status',
        'cluster',
        'cpu',
        'memory',
        'gpu',
        'gpu_memory',
        'temperature',
        'disk',
        'last_seen',
      ]),
    );
    const byId = await call(rt.url, 'GET', `/api/nodes/${jetson.nodeId}/jetpack`);
    expect(byId.body).toMatchObject({
      jetpack_version: '5.1.2',
      l4t_version: '35.4.1',
      cuda_version: '11.4',
      cudnn_version: '8.6.0',
    });
    expect((await call(rt.url, 'GET', '/api/nodes/orin1/jetpack')).body).toMatchObject({
      jetpack_version: '5.1.2',
    });
    expect((await call(rt.url, 'GET', '/api/nodes/jetpack')).body).toMatchObject({
      jetpack_version: '5.1.2',
    });
    expect((await call(rt.url, 'GET', '/api/nodes/nope/jetpack')).status).toBe(404);
    const plain = new ScriptedAgent(rt.url, 'x86');
    await plain.register();
    expect((await call(rt.url, 'GET', `/api/nodes/${plain.nodeId}/jetpack`)).status).toBe(404);
  });

  it('forwards agent events as agent.<type> events', async () => {
    const agent = new ScriptedAgent(rt.url, 'events-node');
    await agent.register();
    const got: Record<string, unknown>[] = [];
    eventHandlers['agent.task.progress'] = async (e) => void got.push(e);
    try {
      const at = new Date().toISOString();
      const res = await agent.events([{ type: 'task.progress', taskId: 't1', progress: 40, at }]);
      expect(res.status).toBe(200);
      await eventually(async () =>
        expect(got).toEqual([
          { type: 'agent.task.progress', nodeId: agent.nodeId, taskId: 't1', progress: 40, at },
        ]),
      );
    } finally {
      delete eventHandlers['agent.task.progress'];
    }
    const bad = await agent.events([{ type: 'task.progress', taskId: 't1', progress: 140, at: 'now' }]);
    expect(bad.status).toBe(422);
  });
});
