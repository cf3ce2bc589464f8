import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

/**
 * A remove its node failed (or one given up on after the agent died running it) leaves the copy
 * `removing`; while the node still reports the container it is asked again, once per grace
 * period (twice the heartbeat interval, at least 10 s), until the container is gone.
 */
describe('a failed remove is asked again (embedded runtime)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: 'SILENT',
        AWS_ENDPOINT_URL: undefined,
        COMMAND_WAIT_MS: '5000',
        NODE_HEARTBEAT_SECONDS: '2',
      },
    });
    agent = new ScriptedAgent(rt.url, 'remove-node', { failRemoves: 1 });
    await agent.register();
    await agent.heartbeat();
    agent.start(300);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });

  it('retries the remove while the container is still reported, then the copy is removed', async () => {
    const started = await call(rt.url, 'POST', '/containers/removeme:1/start', { count: 1 });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const [id] = started.body.started as string[];

    const refused = await call(rt.url, 'DELETE', `/containers/${id}?force=true`);
    expect(refused.status).toBe(502);
    expect(agent.containers.has(id!)).toBe(true);

    await eventually(
      async () => {
        expect(agent.containers.has(id!)).toBe(false);
        expect((await call(rt.url, 'DELETE', `/containers/${id}`)).status).toBe(404);
      },
      30_000,
      250,
    );
    const removes = agent.seen.filter(
      (e) => e.command.type === 'container.remove' && e.command.instanceId === id,
    );
    expect(removes.length).toBeGreaterThanOrEqual(2);
  }, 45_000);
});
