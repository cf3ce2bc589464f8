import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '2',
  COMMAND_WAIT_MS: '5000',
};

interface NodeOut {
  id: string;
  name: string;
  status: string;
  cordoned: boolean;
  draining: boolean;
}

describe('cordon, drain and retire nodes (embedded runtime, scripted agents)', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env, scheduleRefreshMs: 200 });
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await rt?.stop();
  });
  const get = (path: string) => call(rt.url, 'GET', path);
  const post = (path: string, body?: unknown) => call(rt.url, 'POST', path, body);
  async function agent(name: string): Promise<ScriptedAgent> {
    const a = new ScriptedAgent(rt.url, name);
    await a.register();
    a.start(200);
    agents.push(a);
    return a;
  }
  const nodes = async () => (await get('/api/nodes/')).body.nodes as NodeOut[];
  const byName = async (name: string) => (await nodes()).find((n) => n.name === name);
  const running = (a: ScriptedAgent, image: string) =>
    [...a.containers.values()].filter((c) => c.imageId === image && c.state === 'running').length;

  it('cordon by name takes no new copies; uncordon takes them again; shown in the node views', async () => {
    const a = await agent('cord-a');
    const b = await agent('cord-b');

    const cordoned = await post('/api/nodes/cord-a/cordon');
    expect(cordoned.status).toBe(200);
    expect(cordoned.body).toMatchObject({ id: a.nodeId, name: 'cord-a', cordoned: true, draining: false });
    expect(await byName('cord-a')).toMatchObject({ cordoned: true, draining: false });
    const swarm = (await get('/api/swarm/nodes')).body as { id: string; availability: string }[];
    expect(swarm.find((n) => n.id === a.nodeId)?.availability).toBe('pause');
    expect(swarm.find((n) => n.id === b.nodeId)?.availability).toBe('active');
    const worker = (await get(`/workers/${a.nodeId}`)).body;
    expect(worker.cordoned).toBe(true);

    // Three copies: all on the node that is not cordoned.
    const start = await post('/containers/cord:1/start', { count: 3 });
    expect(start.status).toBe(200);
    expect(start.body.started).toHaveLength(3);
    expect(running(a, 'cord:1')).toBe(0);
    expect(running(b, 'cord:1')).toBe(3);

    // Pinned to the cordoned node: nothing is placed there.
    const pinned = await post('/containers/cordpin:1/start', { count: 1, node_id: a.nodeId });
    expect(pinned.status).toBe(409);
    expect(pinned.body.detail).toMatch(/is cordoned/);
    expect(running(a, 'cordpin:1')).toBe(0);

    // Cordon is idempotent, by id as well as by name.
    expect((await post(`/api/nodes/${a.nodeId}/cordon`)).body.cordoned).toBe(true);

    const un = await post('/api/nodes/cord-a/uncordon');
    expect(un.status).toBe(200);
    expect(un.body).toMatchObject({ cordoned: false, draining: false });
    const pinnedAgain = await post('/containers/cordpin:1/start', { count: 1, node_id: 'cord-a' });
    expect(pinnedAgain.status).toBe(200);
    expect(running(a, 'cordpin:1')).toBe(1);
    const more = await post('/containers/cord:1/start', { count: 1 });
    expect(more.status).toBe(200);
    expect(running(a, 'cord:1')).toBe(1);
  });

  it('drain moves service copies to other nodes, removes them from the drained one and says what moved', async () => {
    const a = await agent('drain-a');
    const b = await agent('drain-b');
    // Other tests' nodes stay out of the way.
    for (const n of await nodes())
      if (!n.name.startsWith('drain-')) expect((await post(`/api/nodes/${n.id}/cordon`)).status).toBe(200);

    const start = await post('/containers/drain:1/start', { count: 4 });
    expect(start.status).toBe(200);
    expect(running(a, 'drain:1')).toBe(2);
    expect(running(b, 'drain:1')).toBe(2);
    const onA = [...a.containers.values()].filter((c) => c.imageId === 'drain:1').map((c) => c.instanceId);

    const res = await post('/api/nodes/drain-a/drain');
    expect(res.status).toBe(200);
    expect(res.body.node_id).toBe(a.nodeId);
    expect(res.body.not_moved).toEqual([]);
    expect(res.body.moved).toHaveLength(2);
    for (const m of res.body.moved) {
      expect(m).toMatchObject({
        kind: 'service',
        image: 'drain:1',
        to_node: b.nodeId,
        replacement: expect.any(String),
      });
      expect(onA).toContain(m.id);
    }
    // The old copies are removed from the drained node; the service still has its four.
    await eventually(async () => expect(running(a, 'drain:1')).toBe(0));
    expect(running(b, 'drain:1')).toBe(4);
    const instances = (await get('/containers/drain:1/instances')).body.instances as { status: string }[];
    expect(instances.filter((i) => i.status === 'running')).toHaveLength(4);
    expect(await byName('drain-a')).toMatchObject({ cordoned: true, draining: true });
    expect(
      (await get('/api/swarm/nodes')).body.find((n: { id: string }) => n.id === a.nodeId).availability,
    ).toBe('drain');

    // With nowhere left to go, the copies stay and the answer says why.
    const last = await post('/api/nodes/drain-b/drain');
    expect(last.status).toBe(200);
    expect(last.body.moved).toEqual([]);
    expect(last.body.not_moved).toHaveLength(4);
    for (const m of last.body.not_moved) expect(m.reason).toMatch(/draining: every online node is cordoned/);
    expect(running(b, 'drain:1')).toBe(4);
  });

  it('retire revokes the credential, forgets the node and its copies (left on the host), and replaces them', async () => {
    const a = await agent('ret-a');
    const b = await agent('ret-b');
    for (const n of await nodes()) if (!n.name.startsWith('ret-')) await post(`/api/nodes/${n.id}/cordon`);
    expect((await post('/containers/ret:1/start', { count: 2 })).status).toBe(200);
    expect(running(a, 'ret:1')).toBe(1);
    const kept = [...a.containers.values()].find((c) => c.imageId === 'ret:1')!.instanceId;

    const res = await call(rt.url, 'DELETE', '/api/nodes/ret-a');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ node_id: a.nodeId, name: 'ret-a', stopped: [], left_on_host: [kept] });
    // Its container stays on the host; its credential no longer works; it is gone from the views.
    expect(a.containers.has(kept)).toBe(true);
    expect((await a.heartbeat()).status).toBe(401);
    expect(await byName('ret-a')).toBeUndefined();
    expect((await call(rt.url, 'GET', `/api/nodes/${a.nodeId}/jetpack`)).status).toBe(404);
    // The copy it held is placed again on the other node.
    await eventually(async () => expect(running(b, 'ret:1')).toBe(2));
    // The name is free again: a join (here the API key) registers a new node under it.
    const again = new ScriptedAgent(rt.url, 'ret-a');
    await again.register();
    expect(again.nodeId).not.toBe(a.nodeId);
    await a.stop();
  });

  it('retire with stop=true removes the containers first; refuses it for an offline node (409)', async () => {
    const a = await agent('stop-a');
    const b = await agent('stop-b');
    for (const n of await nodes()) if (!n.name.startsWith('stop-')) await post(`/api/nodes/${n.id}/cordon`);
    expect((await post('/containers/stop:1/start', { count: 2 })).status).toBe(200);
    const onA = [...a.containers.values()].find((c) => c.imageId === 'stop:1')!.instanceId;

    const res = await call(rt.url, 'DELETE', '/api/nodes/stop-a?stop=true');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ stopped: [onA], left_on_host: [] });
    expect(a.containers.size).toBe(0);
    await a.stop();

    // An offline node cannot hear a stop.
    await b.stop();
    await eventually(async () => expect((await byName('stop-b'))?.status).toBe('offline'));
    const refused = await call(rt.url, 'DELETE', '/api/nodes/stop-b?stop=true');
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/offline/);
    expect(await byName('stop-b')).toBeDefined();
  });

  it('answers 404 for unknown nodes and 400 for bad input, changing nothing', async () => {
    const before = await nodes();
    for (const [method, path] of [
      ['POST', '/api/nodes/no-such-node/cordon'],
      ['POST', '/api/nodes/no-such-node/uncordon'],
      ['POST', '/api/nodes/no-such-node/drain'],
      ['DELETE', '/api/nodes/no-such-node'],
    ] as const) {
      const res = await call(rt.url, method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.detail).toMatch(/no-such-node not found/);
    }
    const bad = await call(rt.url, 'DELETE', `/api/nodes/${before[0]!.id}?stop=maybe`);
    expect(bad.status).toBe(400);
    expect(Array.isArray(bad.body.detail)).toBe(true);
    expect(await nodes()).toEqual(
      before.map((n) => ({
        ...n,
        last_seen: expect.anything(),
        status: expect.any(String),
        cpu: expect.any(Number),
        memory: expect.any(Number),
        disk: expect.any(Number),
      })),
    );
  });

  it('documents the routes in /openapi.json', async () => {
    const doc = (await get('/openapi.json')).body;
    expect(Object.keys(doc.paths['/api/nodes/{node_id}/cordon'])).toEqual(['post']);
    expect(Object.keys(doc.paths['/api/nodes/{node_id}/uncordon'])).toEqual(['post']);
    expect(Object.keys(doc.paths['/api/nodes/{node_id}/drain'])).toEqual(['post']);
    const del = doc.paths['/api/nodes/{node_id}'].delete;
    expect(Object.keys(del.responses)).toEqual(expect.arrayContaining(['200', '400', '404', '409']));
    expect(del.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['node_id', 'stop']),
    );
  });
});

describe('the sweep retires nodes silent past NODE_RETIRE_AFTER_SECONDS', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: { ...env, NODE_OFFLINE_AFTER_SECONDS: '1', NODE_RETIRE_AFTER_SECONDS: '2' },
    });
  });
  afterAll(async () => rt?.stop());

  it('retires the silent node and clears its node_offline problem; a heartbeating node stays', async () => {
    const silent = new ScriptedAgent(rt.url, 'silent');
    await silent.register();
    const alive = new ScriptedAgent(rt.url, 'alive');
    await alive.register();
    alive.start(200);
    try {
      await eventually(async () => {
        // Listed once the sweep takes it offline.
        await emit(rt.ctx, { type: 'nodes.sweep' });
        const problems = (await call(rt.url, 'GET', '/api/maintenance/problems')).body;
        const list = (problems.problems ?? problems) as { node_id: string; type: string }[];
        expect(list.some((p) => p.node_id === silent.nodeId && p.type === 'node_offline')).toBe(true);
      }, 10_000);
      await eventually(
        async () => {
          await emit(rt.ctx, { type: 'nodes.sweep' });
          const names = ((await call(rt.url, 'GET', '/api/nodes/')).body.nodes as NodeOut[]).map(
            (n) => n.name,
          );
          expect(names).not.toContain('silent');
          expect(names).toContain('alive');
        },
        10_000,
        500,
      );
      const problems = (await call(rt.url, 'GET', '/api/maintenance/problems')).body;
      const list = (problems.problems ?? problems) as { node_id: string }[];
      expect(list.filter((p) => p.node_id === silent.nodeId)).toEqual([]);
      expect((await silent.heartbeat()).status).toBe(401);
    } finally {
      await alive.stop();
    }
  });
});
