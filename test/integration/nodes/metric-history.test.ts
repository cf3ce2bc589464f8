import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

/** GET /api/nodes/{node_id}/metrics and GET /api/whoami through the local runtime's HTTP server. */
describe('metric history route (embedded runtime)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env: { AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT' } });
    agent = new ScriptedAgent(rt.url, 'hist-node');
    await agent.register();
    expect((await agent.heartbeat()).status).toBe(200);
  });
  afterAll(async () => rt?.stop());

  it("serves the node's first heartbeat as a 1-minute point, by id or name", async () => {
    const byId = await call(rt.url, 'GET', `/api/nodes/${agent.nodeId}/metrics`);
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ node_id: agent.nodeId, step: 60 });
    expect(byId.body.fields).toEqual([
      'cpu',
      'memory',
      'gpu',
      'gpu_memory',
      'gpu_memory_mib',
      'temperature',
      'disk',
    ]);
    expect(byId.body.points).toHaveLength(1);
    expect(Object.keys(byId.body.points[0]).sort()).toEqual(['t', ...byId.body.fields].sort());
    expect(byId.body.points[0].t).toMatch(/:00\.000Z$/);
    const byName = await call(rt.url, 'GET', '/api/nodes/hist-node/metrics?step=300');
    expect(byName.body).toMatchObject({ node_id: agent.nodeId, step: 300, points: [] });
  });

  it('keeps the points a node carries when it registers again (its agent restarted)', async () => {
    const before = await call(rt.url, 'GET', `/api/nodes/${agent.nodeId}/metrics`);
    expect(before.body.points).toHaveLength(1);
    await agent.register();
    const after = await call(rt.url, 'GET', `/api/nodes/${agent.nodeId}/metrics`);
    expect(after.body.points).toEqual(before.body.points);
  });

  it('is online again once it registers after saying it was stopping (its word does not outlive the registration)', async () => {
    const node = async () =>
      ((await call(rt.url, 'GET', '/api/nodes/')).body.nodes as { id: string; status: string }[]).find(
        (n) => n.id === agent.nodeId,
      )!;
    const stopped = await call(rt.url, 'POST', '/agent/stopping', undefined, agent.auth);
    expect(stopped.status).toBe(200);
    expect((await node()).status).toBe('offline');
    await agent.register();
    expect((await node()).status).toBe('online');
    // The history points the liveness record carries stayed through both.
    expect((await call(rt.url, 'GET', `/api/nodes/${agent.nodeId}/metrics`)).body.points).toHaveLength(1);
  });

  it('refuses a bad range or step with 400 and an unknown node with 404', async () => {
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const cases: [string, number, string][] = [
      [`since=${iso(now)}&until=${iso(now - 60_000)}`, 400, 'since must be before until'],
      [`since=${iso(now - 31 * 86_400_000)}`, 400, 'A range spans 30 days at most'],
      [`since=${iso(now - 2 * 86_400_000)}&step=60`, 400, '1-minute points are kept 24 h'],
      ['step=120', 400, 'step is 60 or 300'],
      ['since=yesterday', 400, ''],
    ];
    for (const [query, status, message] of cases) {
      const res = await call(rt.url, 'GET', `/api/nodes/${agent.nodeId}/metrics?${query}`);
      expect(res.status, query).toBe(status);
      expect(JSON.stringify(res.body.detail), query).toContain(message);
    }
    expect((await call(rt.url, 'GET', '/api/nodes/no-such-node/metrics')).status).toBe(404);
    // Older than a day: 5-minute points by default.
    const old = await call(
      rt.url,
      'GET',
      `/api/nodes/${agent.nodeId}/metrics?since=${iso(now - 3 * 86_400_000)}`,
    );
    expect(old.body.step).toBe(300);
  });

  it('tells a caller its role; with API auth off, anonymous admin', async () => {
    expect(await call(rt.url, 'GET', '/api/whoami')).toEqual({
      status: 200,
      body: { name: 'anonymous', key_id: null, role: 'admin', auth: false },
    });
  });
});
