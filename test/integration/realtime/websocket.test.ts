import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { emit } from '../../../functions/core/events.js';
import {
  broadcast,
  channelConnections,
  getConnection,
  saveConnection,
} from '../../../functions/realtime/connections.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import type { LocalSockets } from '../../../local/websocket-server.js';
import { describeWithMoto, emulatorDeployment, uniqueName } from '../../harness/services.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are loosely typed JSON
type Frame = any;

/** A WebSocket client that keeps every frame; waits are bounded polls, never sleeps. */
class Client {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    this.ws.on('message', (data) => this.frames.push(JSON.parse(String(data))));
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.ws.on('error', () => undefined);
  }
  next(match: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    return eventually(async () => {
      const hit = this.frames.find(match);
      if (!hit) throw new Error(`no matching frame among ${JSON.stringify(this.frames.slice(-3))}`);
      return hit;
    }, timeoutMs);
  }
  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  API_AUTH: 'false',
  NODE_OFFLINE_AFTER_SECONDS: '2',
  COMMAND_WAIT_MS: '5000',
  WS_PUSH_INTERVAL_SECONDS: '1',
  // A dead copy's replacement waits out its restart backoff (10 s by default).
  RESTART_BACKOFF_SECONDS: '1',
};
const wsUrl = (rt: Runtime, path: string) => `${rt.url.replace(/^http/, 'ws')}${path}`;

function heartbeatWith(agent: ScriptedAgent, metrics: Record<string, unknown>) {
  return call(
    agent.base,
    'POST',
    '/agent/heartbeat',
    {
      metrics: {
        cpuPercent: 20,
        memoryUsedMb: 4096,
        memoryTotalMb: 16_384,
        diskUsedGb: 30,
        diskTotalGb: 100,
        gpus: [],
        ...metrics,
      },
      containers: [],
      loadedModels: [],
    },
    agent.auth,
  );
}

const gpu = (memoryUsedMiB: number) => ({
  index: 0,
  uuid: 'GPU-0',
  name: 'NVIDIA H100',
  utilizationGpu: 40,
  utilizationMemory: 5,
  memoryTotalMiB: 80_000,
  memoryUsedMiB,
  memoryFreeMiB: 80_000 - memoryUsedMiB,
  temperatureC: 51,
  powerDrawW: 100,
  powerLimitW: 700,
});

describe('WebSocket API: metrics, doctor, refusals, pruning (embedded runtime)', () => {
  let rt: Runtime;
  const clients: Client[] = [];
  const open = (path: string) => {
    const c = new Client(wsUrl(rt, path));
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await rt?.stop();
  });

  it('/ws/metrics pushes every node on connect, then the numbers of a later heartbeat', async () => {
    const agent = new ScriptedAgent(rt.url, 'm1', { gpus: 1 });
    await agent.register();
    await heartbeatWith(agent, { gpus: [gpu(1024)] });
    const client = open('/ws/metrics');

    const first = await client.next((f) => f.type === 'metrics' && f.nodes.m1);
    expect(first.nodes.m1).toEqual({
      cpu: 20,
      memory: 25,
      gpu: 40,
      gpu_memory: 1024,
      temperature: 51,
      disk: 30,
      status: 'online',
    });
    expect(Number.isNaN(Date.parse(first.timestamp))).toBe(false);

    await heartbeatWith(agent, { cpuPercent: 55.5, diskUsedGb: 50, gpus: [gpu(4096)] });
    const later = await client.next((f) => f.type === 'metrics' && f.nodes.m1?.cpu === 55.5);
    expect(later.nodes.m1).toMatchObject({ gpu_memory: 4096, disk: 50 });
    await client.close();
  });

  it('/ws/doctor pushes the /health body and the nodes with a full disk or gone silent', async () => {
    const disky = new ScriptedAgent(rt.url, 'disky');
    await disky.register();
    await heartbeatWith(disky, { diskUsedGb: 95 });
    const client = open('/ws/doctor');

    const frame = await client.next(
      (f) => f.type === 'doctor' && f.problems.some((p: Frame) => p.node === 'disky'),
    );
    expect(frame.health).toMatchObject({ status: 'healthy', database_connected: true });
    expect(frame.status).toBe('degraded');
    expect(frame.problems).toContainEqual(
      expect.objectContaining({ node: 'disky', node_id: disky.nodeId, check: 'disk', level: 'warning' }),
    );
    // No more heartbeats: past NODE_OFFLINE_AFTER_SECONDS a periodic push reports it offline.
    const offline = await client.next((f) =>
      f.problems?.some((p: Frame) => p.node === 'disky' && p.check === 'offline'),
    );
    expect(offline.problems.find((p: Frame) => p.check === 'offline').message).toMatch(/disky is offline/);
    await client.close();
  });

  it('closes with 4404 and a reason for an unknown node, and 4400 for a logs stream without one', async () => {
    const unknown = open('/ws/logs/no-such-node');
    expect(await unknown.closed).toEqual({ code: 4404, reason: 'Node no-such-node not found' });
    expect(unknown.frames).toEqual([]);
    expect((await open('/ws/nonsense').closed).code).toBe(4404);
    expect((await open('/ws/logs').closed).code).toBe(4400);
    expect(await channelConnections(rt.ctx, 'logs#no-such-node')).toEqual([]);
  });

  it('removes the record of a closed client, and prunes a record whose socket is gone at the next push', async () => {
    const count = async () => (await channelConnections(rt.ctx, 'doctor')).length;
    const before = await count();
    const client = open('/ws/doctor');
    await client.next((f) => f.type === 'doctor');
    expect(await count()).toBe(before + 1);
    client.ws.terminate();
    await eventually(async () => expect(await count()).toBe(before));

    // As left by a previous process: a record with no socket behind it.
    await saveConnection(rt.ctx, 'left-over', { channel: 'metrics' });
    await eventually(async () => expect(await getConnection(rt.ctx, 'left-over')).toBeUndefined());
  });

  it('a broadcast with no socket open reads nothing; a client that connects later gets the next one', async () => {
    for (const c of clients) c.ws.terminate();
    await eventually(() => expect((rt.ctx.connections as LocalSockets).idle()).toBe(true));
    const store = rt.ctx.store;
    const query = store.query.bind(store);
    const channels: string[] = [];
    store.query = (pk, options) => {
      if (pk.startsWith('WSCHANNEL#')) channels.push(pk);
      return query(pk, options);
    };
    try {
      let built = 0;
      const frame = async () => ({ type: 'log', n: ++built });
      expect(await broadcast(rt.ctx, 'logs#n1', frame)).toEqual({ delivered: 0, pruned: 0 });
      expect(channels).toEqual([]);
      expect(built).toBe(0);

      const client = open('/ws/doctor');
      await client.next((f) => f.type === 'doctor');
      expect(await broadcast(rt.ctx, 'doctor', frame)).toEqual({ delivered: 1, pruned: 0 });
      expect(channels).toEqual(['WSCHANNEL#doctor']);
      await client.next((f) => f.type === 'log' && f.n === 1);
      await client.close();
    } finally {
      store.query = query;
    }
  });
});

describe('WebSocket API: /ws/logs of a node (embedded runtime, scripted agent)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    agent = new ScriptedAgent(rt.url, 'logger1', { cpuCount: 8, memoryMb: 16_384 });
    await agent.register();
    await agent.heartbeat();
    agent.start(300);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });

  it("streams the node's container starts, exits (with code), removals, and its offline/online transitions", async () => {
    const byName = new Client(wsUrl(rt, '/ws/logs/logger1'));
    const byId = new Client(wsUrl(rt, `/ws/logs/${agent.nodeId}`));
    const hello = await byName.next((f) => f.type === 'log');
    expect(hello).toMatchObject({ node_id: agent.nodeId, node_name: 'logger1', level: 'info' });
    await byId.next((f) => f.type === 'log');

    const started = await call(rt.url, 'POST', '/containers/nginx:alpine/start', { count: 1 });
    expect(started.status).toBe(200);
    const [instanceId] = started.body.started as string[];
    const line = await byName.next((f) => /^Container .* started$/.test(f.message));
    expect(line).toMatchObject({ type: 'log', node_id: agent.nodeId, level: 'info' });
    expect(line.message).toContain('nginx:alpine');
    await byId.next((f) => /^Container .* started$/.test(f.message));

    const res = await agent.events([
      {
        type: 'container.exited',
        instanceId,
        kind: 'service',
        exitCode: 137,
        logTail: 'SECRET=hunter2',
        at: new Date().toISOString(),
      },
    ]);
    expect(res.status).toBe(200);
    const exited = await byName.next((f) => /exited with code 137/.test(f.message));
    expect(exited.level).toBe('error');
    expect(JSON.stringify(byName.frames)).not.toContain('hunter2');
    expect(JSON.stringify(byName.frames)).not.toContain(agent.token);

    // The reconciler replaces the dead copy after its backoff and retires it meanwhile: remove the running one.
    await eventually(async () => {
      const listed = (await call(rt.url, 'GET', '/containers')).body.containers as {
        id: string;
        image: string;
        status: string;
      }[];
      const victim = listed.find((c) => c.image === 'nginx:alpine' && c.status === 'running');
      expect(victim).toBeDefined();
      const removed = await call(rt.url, 'DELETE', `/containers/${victim!.id}?force=true`);
      expect(removed.status).toBe(200);
    });
    await byName.next((f) => /^Container .* removed$/.test(f.message));

    // Silent past NODE_OFFLINE_AFTER_SECONDS, then swept (the minute schedule, fired here).
    await agent.stop();
    await eventually(
      async () => {
        await emit(rt.ctx, { type: 'nodes.sweep' });
        await byName.next((f) => f.message.startsWith('Node went offline'), 500);
      },
      15_000,
      500,
    );
    await agent.heartbeat();
    const online = await byName.next((f) => f.message === 'Node came online');
    expect(online.level).toBe('info');
    byName.ws.terminate();
    byId.ws.terminate();
  });

  it('streams a registration of the node', async () => {
    const client = new Client(wsUrl(rt, '/ws/logs/logger1'));
    await client.next((f) => f.type === 'log');
    await agent.register();
    await client.next((f) => f.message === 'Node logger1 registered');
    client.ws.terminate();
  });
});

describe('WebSocket API: API key and shutdown (embedded runtime, API_AUTH=true)', () => {
  it('needs the API key (header or ?token=) and stops cleanly with clients connected', async () => {
    const rt = await startRuntime({ port: 0, env: { ...env, API_AUTH: 'true' } });
    let stopped = false;
    try {
      await rt.ctx.secrets.put('api-key', 'test-key-123');
      const anonymous = new Client(wsUrl(rt, '/ws/metrics'));
      expect(await anonymous.closed).toEqual({ code: 4401, reason: 'Invalid or missing API key' });
      const wrong = new Client(wsUrl(rt, '/ws/metrics?token=nope'));
      expect((await wrong.closed).code).toBe(4401);

      const byQuery = new Client(wsUrl(rt, '/ws/metrics?token=test-key-123'));
      const byHeader = new Client(wsUrl(rt, '/ws/doctor'), { authorization: 'Bearer test-key-123' });
      await byQuery.next((f) => f.type === 'metrics');
      await byHeader.next((f) => f.type === 'doctor');

      await rt.stop();
      stopped = true;
      expect((await byQuery.closed).code).toBe(1001);
      expect((await byHeader.closed).code).toBe(1001);
    } finally {
      if (!stopped) await rt.stop();
    }
  });
});

describeWithMoto('WebSocket API connection store on moto (emulator mode)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    const id = uniqueName('ws');
    rt = await startRuntime({
      port: 0,
      env: {
        ...env,
        ...emulatorDeployment(id),
      },
    });
  }, 60_000);
  afterAll(async () => rt?.stop());

  it('records, pushes to and removes connections in the DynamoDB table', async () => {
    expect(rt.ctx.mode).toBe('emulator');
    const client = new Client(wsUrl(rt, '/ws/metrics'));
    await client.next((f) => f.type === 'metrics');
    expect(await channelConnections(rt.ctx, 'metrics')).toHaveLength(1);
    await saveConnection(rt.ctx, 'left-over', { channel: 'metrics' });
    await eventually(async () => expect(await getConnection(rt.ctx, 'left-over')).toBeUndefined());
    await client.close();
    await eventually(async () => expect(await channelConnections(rt.ctx, 'metrics')).toEqual([]));
  });
});

describe('WebSocket API: the connection time limit (embedded runtime)', () => {
  it('closes a socket with 1001 at WS_MAX_CONNECTION_SECONDS and removes its record, as API Gateway at 2 h', async () => {
    const rt = await startRuntime({ port: 0, env: { ...env, WS_MAX_CONNECTION_SECONDS: '1' } });
    try {
      const client = new Client(wsUrl(rt, '/ws/doctor'));
      await client.next((f) => f.type === 'doctor');
      expect(await channelConnections(rt.ctx, 'doctor')).toHaveLength(1);
      expect(await client.closed).toEqual({ code: 1001, reason: 'connection reached its time limit' });
      await eventually(async () => expect(await channelConnections(rt.ctx, 'doctor')).toEqual([]));
    } finally {
      await rt.stop();
    }
  });
});
