import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

/** GET /api/nodes/{node_id}: one node, by id or name, through the local runtime's HTTP server. */
describe('one node route (embedded runtime)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env: { AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT' } });
    agent = new ScriptedAgent(rt.url, 'detail-node', { gpus: 1, labels: { zone: 'rack-1' } });
    await agent.register();
    expect((await agent.heartbeat()).status).toBe(200);
    // A second node, so the answer is this one and not the first of the fleet.
    const other = new ScriptedAgent(rt.url, 'detail-other');
    await other.register();
  });
  afterAll(async () => rt?.stop());

  it("answers by id with the listing's item for the node, labels included", async () => {
    const listing = await call(rt.url, 'GET', '/api/nodes/');
    const item = (listing.body.nodes as { id: string }[]).find((n) => n.id === agent.nodeId);
    const one = await call(rt.url, 'GET', `/api/nodes/${agent.nodeId}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(item);
    expect(one.body).toMatchObject({ id: agent.nodeId, name: 'detail-node', status: 'online' });
    expect(one.body.labels).toMatchObject({ zone: 'rack-1' });
  });

  it('answers by name the same node, with labels set through the swarm API on top', async () => {
    const set = await call(rt.url, 'POST', '/api/swarm/nodes/detail-node/labels', {
      labels: { zone: 'rack-2', tier: 'gold' },
    });
    expect(set.status).toBe(200);
    const byName = await call(rt.url, 'GET', '/api/nodes/detail-node');
    expect(byName.status).toBe(200);
    expect(byName.body).toMatchObject({
      id: agent.nodeId,
      name: 'detail-node',
      labels: { zone: 'rack-2', tier: 'gold' },
    });
    // The static route beside it keeps its own answer.
    expect((await call(rt.url, 'GET', '/api/nodes/jetpack')).status).toBe(404);
  });

  it('answers an unknown node with 404 in the FastAPI error shape', async () => {
    const res = await call(rt.url, 'GET', '/api/nodes/no-such-node');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: 'Node no-such-node not found' });
  });
});
