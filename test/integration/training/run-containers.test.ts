import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandEnvelope } from '../../../functions/fleet/protocol.js';
import { repairJobs } from '../../../functions/training/repair.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import type { Runtime } from '../../../local/runtime.js';
import { ScriptedAgent } from '../fleet/scripted-agent.js';
import { call, embeddedEnv, eventually, jobBody, startTrainingRuntime } from './harness.js';

/**
 * A run whose container vanished from its node (removed behind the agent, the engine's state
 * lost) never reports an exit. The repair sweep reads the node's heartbeats: once one sent well
 * after the start no longer lists the container, the attempt counts as failed and the job moves
 * on, instead of staying `running` (and undeletable) for good. On an injected clock.
 */
describe('a run container lost from its node (embedded runtime, scripted agent)', () => {
  let clock = Date.parse('2026-03-10T01:00:00.000Z');
  let rt: Runtime;
  let agent: ScriptedAgent;

  beforeAll(async () => {
    rt = await startTrainingRuntime(embeddedEnv, { now: () => clock });
    overrideTrainingSettings(rt.ctx, { retry: { baseSeconds: 1, maxSeconds: 1 } });
    agent = new ScriptedAgent(rt.url, 'gpu-lost', { gpus: 1 });
    await agent.register();
    expect((await agent.heartbeat()).status).toBe(200);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const startsOf = (jobId: string) =>
    agent.seen.filter(
      (e): e is CommandEnvelope & { command: { type: 'container.start' } } =>
        e.command.type === 'container.start' && e.command.spec.env.TRAINING_JOB_ID === jobId,
    );
  /** Serves commands until start number `n` of the job has been executed and reported. */
  const served = (jobId: string, n: number) =>
    eventually(async () => {
      await agent.serveOnce();
      const s = startsOf(jobId)[n - 1];
      expect(s).toBeDefined();
      return s!;
    });
  const heartbeatAfter = async (ms: number) => {
    clock += ms;
    expect((await agent.heartbeat()).status).toBe(200);
  };

  it('counts the attempt as failed once a later heartbeat no longer lists its container', async () => {
    // Prepare: a running job whose start the agent executed
    const { job_id: id } = (
      await api('POST', '/jobs', jobBody({ schedule: null, max_retries: 1, resources: { gpus: 1 } }))
    ).body;
    const first = await served(id, 1);
    const instanceId = first.command.spec.instanceId;
    expect((await api('GET', `/jobs/${id}`)).body.status).toBe('running');
    const container = agent.containers.get(instanceId)!;

    // Missing from a heartbeat right after the start: too soon to tell (it may predate the start)
    agent.containers.delete(instanceId);
    await heartbeatAfter(1000);
    await repairJobs(rt.ctx);
    expect((await api('GET', `/jobs/${id}`)).body.status).toBe('running');

    // Listed by a later heartbeat: still running, nothing sent again
    agent.containers.set(instanceId, container);
    await heartbeatAfter(30_000);
    await repairJobs(rt.ctx);
    expect((await api('GET', `/jobs/${id}`)).body.status).toBe('running');
    expect(startsOf(id)).toHaveLength(1);

    // Act: gone behind the agent's back
    agent.containers.delete(instanceId);
    await heartbeatAfter(1000);
    const report = await repairJobs(rt.ctx);

    // Assess: attempt 1 failed with the reason, the job retries and attempt 2 starts
    expect(report.errors).toBe(0);
    const job = (await api('GET', `/jobs/${id}`)).body;
    expect(job).toMatchObject({
      status: 'retrying',
      retry_count: 1,
      error_message: `Attempt failed: the run's container is gone from node ${agent.nodeId} (removed outside the control plane)`,
    });
    clock += 2000;
    const second = await served(id, 2);
    expect(second.command.spec.env.TRAINING_ATTEMPT).toBe('2');
    const runs = (await api('GET', `/jobs/${id}/runs`)).body.runs as Record<string, unknown>[];
    expect(runs.map((r) => [r.attempt, r.status, r.exit_code])).toEqual([
      [2, 'running', null],
      [1, 'failed', null],
    ]);
    expect(runs[1]!.error).toMatch(/container is gone from node/);
  });
});
