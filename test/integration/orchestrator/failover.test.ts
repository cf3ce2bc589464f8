import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import { MINUTE_SCHEDULE } from '../../../functions/minute.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '1',
  // Agents that do not answer within this get a 202.
  COMMAND_WAIT_MS: '300',
};

describe('pending commands, offline nodes and failover (embedded runtime)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env, scheduleRefreshMs: 200 });
  });
  afterAll(async () => {
    await rt?.stop();
  });
  const get = (path: string) => call(rt.url, 'GET', path);

  it('answers 202 with the pending command ids when no agent answers in time, and completes later', async () => {
    // Prepare: an agent that registered and heartbeats but does not serve commands yet
    const agent = new ScriptedAgent(rt.url, 'slow');
    await agent.register();
    // Act
    const res = await call(rt.url, 'POST', '/containers/slow:1/start', { count: 1 });
    // Assess
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'pending', pending_commands: [expect.any(String)] });
    const [commandId] = res.body.pending_commands as string[];
    expect((await get(`/commands/${commandId}`)).body).toMatchObject({
      command_id: commandId,
      status: 'pending',
      type: 'container.start',
      node_id: agent.nodeId,
    });
    expect((await get('/containers/slow:1/instances')).body.instances[0]).toMatchObject({
      status: 'created',
      endpoint: null,
    });

    // The agent catches up.
    expect(await agent.serveOnce(1)).toHaveLength(1);
    expect((await get(`/commands/${commandId}`)).body).toMatchObject({
      status: 'succeeded',
      completed_at: expect.any(String),
    });
    expect((await get('/containers/slow:1/instances')).body.instances[0].status).toBe('running');

    // A stop nobody answers is pending too; the instance shows it is still running until then.
    const id = res.body.started[0] as string;
    const stop = await call(rt.url, 'POST', '/containers/slow:1/stop', { instanceId: id });
    expect(stop.status).toBe(202);
    expect(stop.body.pending_commands).toHaveLength(1);
    await agent.serveOnce(1);
    expect((await call(rt.url, 'POST', '/containers/slow:1/stop', { instanceId: id })).body).toEqual({
      stopped: true,
    });
  });

  it('refuses a start no node can run, changing nothing (409)', async () => {
    const small = new ScriptedAgent(rt.url, 'small', { cpuCount: 4 });
    await small.register();
    const before = (await get('/images')).body;
    const res = await call(rt.url, 'POST', '/containers/huge:1/start', {
      count: 1,
      resources: { cpu_limit: '512' },
    });
    expect(res.status).toBe(409);
    expect(res.body.detail).toBe('Cannot start huge:1: no online node has enough free resources');
    expect((await get('/images')).body).toEqual(before);
  });

  it('moves the copies of a node that went silent to another node, and removes the originals when it returns', async () => {
    // Prepare: two nodes; `a` is emptier so it takes the copy.
    const a = new ScriptedAgent(rt.url, 'edge-a', { cpuCount: 16, address: '10.1.0.1' });
    const b = new ScriptedAgent(rt.url, 'edge-b', { cpuCount: 4, address: '10.1.0.2' });
    await a.register();
    await b.register();
    a.start(200);
    b.start(200);
    const started = await eventually(async () => {
      const res = await call(rt.url, 'POST', '/start/container', {
        count: 1,
        resources: { image: 'web:2', cpu_limit: '2' },
        ports: [80],
      });
      expect(res.status).toBe(200);
      return res.body;
    });
    const original = started.container_id as string;
    expect(a.containers.has(original)).toBe(true);

    // Act: `a` goes silent; the periodic sweep notices.
    await a.stop();
    await new Promise((r) => setTimeout(r, 1300));
    expect((await get(`/containers/instances/${original}/health`)).body).toMatchObject({
      status: 'critical',
      errors: [expect.stringMatching(/offline/)],
    });
    await emit(rt.ctx, { type: 'nodes.sweep' });

    // Assess: a replacement on b, the original orphaned, its endpoint DOWN.
    const replacement = await eventually(async () => {
      const running = [...b.containers.values()].filter(
        (c) => c.imageId === 'web:2' && c.state === 'running',
      );
      expect(running).toHaveLength(1);
      return running[0]!.instanceId;
    });
    await eventually(async () => {
      const img = ((await get('/images')).body.images as { image: string }[]).find(
        (i) => i.image === 'web:2',
      );
      expect(img).toMatchObject({ desired_count: 1, current_running: 1 });
    });
    const listed = (await get('/containers')).body.containers as {
      id: string;
      status: string;
      node_id: string;
    }[];
    expect(listed.find((c) => c.id === original)).toMatchObject({ status: 'unknown', node_id: a.nodeId });
    expect(listed.find((c) => c.id === replacement)).toMatchObject({ status: 'running', node_id: b.nodeId });
    const eps = (await get('/registry/endpoints?image_id=web:2')).body.endpoints as {
      id: string;
      host: string;
      status: string;
    }[];
    expect(eps.find((e) => e.id.startsWith(original))).toMatchObject({ host: '10.1.0.1', status: 'DOWN' });
    expect(eps.find((e) => e.id.startsWith(replacement))).toMatchObject({ host: '10.1.0.2', status: 'UP' });

    // `a` returns, still running the old copy: it is told to remove it.
    a.start(200);
    await eventually(async () => expect(a.containers.has(original)).toBe(false));
    await eventually(async () =>
      expect(
        ((await get('/containers')).body.containers as { id: string }[]).some((c) => c.id === original),
      ).toBe(false),
    );
    expect((await get('/registry/endpoints?image_id=web:2')).body.endpoints).toHaveLength(1);
    await a.stop();
    await b.stop();
  });

  it('exposes the every-minute schedule that sweeps, places and pushes in one invocation', async () => {
    const s = await rt.ctx.scheduler.get(MINUTE_SCHEDULE);
    expect(s).toMatchObject({ name: MINUTE_SCHEDULE, expression: 'rate(1 minute)', enabled: true });
    expect(JSON.parse(s!.payload)).toEqual({ type: 'minute.tick' });
    // The three schedules it replaced are gone: nothing else fires every minute.
    for (const name of ['nodes-sweep', 'placement-run', 'live-push'])
      expect(await rt.ctx.scheduler.get(name)).toBeUndefined();
  });
});
