import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import type { CommandEnvelope } from '../../../protocol/commands.js';
import { repairJobs } from '../../../functions/training/repair.js';
import { sweepShard } from '../../../functions/nodes/nodes.js';
import { SHARDS } from '../../../functions/nodes/node-records.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import type { Runtime } from '../../../local/runtime.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';
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
    // Heartbeats every 10 s: the grace before an unlisted container counts as gone is two of them.
    rt = await startTrainingRuntime({ ...embeddedEnv, NODE_HEARTBEAT_SECONDS: '10' }, { now: () => clock });
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

/**
 * A run closed because its node went offline leaves its container there, still training. The
 * removal queued for it can be lost (the dead agent's last long poll took it); when the node is
 * back, what its heartbeat lists of ended runs is removed again, so the retry does not train
 * next to it on the same checkpoint folder. On an injected clock.
 */
describe('containers of runs that ended while their node was away (embedded runtime, scripted agent)', () => {
  let clock = Date.parse('2026-03-10T01:00:00.000Z');
  let rt: Runtime;
  let agent: ScriptedAgent;

  beforeAll(async () => {
    rt = await startTrainingRuntime(
      { ...embeddedEnv, NODE_OFFLINE_AFTER_SECONDS: '30' },
      { now: () => clock },
    );
    overrideTrainingSettings(rt.ctx, { retry: { baseSeconds: 1, maxSeconds: 1 }, placementRetrySeconds: 1 });
    agent = new ScriptedAgent(rt.url, 'gpu-away', { gpus: 1 });
    await agent.register();
    expect((await agent.heartbeat()).status).toBe(200);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const commandsFor = (instanceId: string, type: string) =>
    agent.seen.filter(
      (e) =>
        e.command.type === type &&
        (e.command.type === 'container.start'
          ? e.command.spec.instanceId
          : (e.command as { instanceId?: string }).instanceId) === instanceId,
    );

  it('queues the removal again when the node is back, and the retry runs alone', async () => {
    // Prepare: attempt 1 running on the node
    const { job_id: id } = (
      await api('POST', '/jobs', jobBody({ schedule: null, max_retries: 1, resources: { gpus: 1 } }))
    ).body;
    const first = await eventually(async () => {
      await agent.serveOnce();
      const s = agent.seen.find(
        (e) => e.command.type === 'container.start' && e.command.spec.env.TRAINING_JOB_ID === id,
      );
      expect(s).toBeDefined();
      return s as CommandEnvelope & { command: { type: 'container.start' } };
    });
    const old = first.command.spec.instanceId;
    const oldContainer = agent.containers.get(old)!;

    // The node falls silent past NODE_OFFLINE_AFTER_SECONDS: the attempt is lost, the job retries
    clock += 31_000;
    await emit(rt.ctx, { type: 'nodes.sweep' });
    await eventually(async () => expect((await api('GET', `/jobs/${id}`)).body.status).toBe('retrying'));
    // The removal queued for the old container never reaches the agent (taken, never executed)
    const lost = await eventually(async () => {
      const got = await agent.poll();
      expect(got.map((g) => g.envelope.command.type)).toContain('container.remove');
      return got;
    });
    await agent.ack(lost.map((g) => g.receiptHandle));
    expect(agent.containers.has(old)).toBe(true);

    // Act: the node is back; its first heartbeat still lists the old container
    clock += 1000;
    expect((await agent.heartbeat()).status).toBe(200);

    // Assess: the old container is removed, attempt 2 runs, and only it
    await eventually(async () => {
      await agent.serveOnce();
      expect(agent.containers.has(old)).toBe(false);
      const runs = (await api('GET', `/jobs/${id}/runs`)).body.runs as Record<string, unknown>[];
      expect(runs.map((r) => [r.attempt, r.status])).toEqual([
        [2, 'running'],
        [1, 'failed'],
      ]);
    });
    expect(commandsFor(old, 'container.remove')).toHaveLength(1);
    const running = [...agent.containers.values()].filter((c) => c.kind === 'run').map((c) => c.instanceId);
    expect(running).toEqual([old.replace(/-a1$/, '-a2')]);

    // The sweep hands the node to the stray check, which leaves a running run's container alone
    const holders = async () =>
      (await Promise.all(SHARDS.map((s) => sweepShard(rt.ctx, s)))).flatMap((p) => p.runHolders);
    expect(await holders()).toEqual([agent.nodeId]);
    await emit(rt.ctx, { type: 'training.strays', nodeIds: [agent.nodeId] });
    expect(commandsFor(running[0]!, 'container.remove')).toHaveLength(0);

    // The ended run's container is back while the node stays online (engine state restored):
    // after the grace, the stray check removes it again, and only it
    agent.containers.set(old, oldContainer);
    for (let beat = 0; beat < 4; beat++) {
      // Beats inside NODE_OFFLINE_AFTER_SECONDS: the node never goes offline and back.
      clock += 20_000;
      expect((await agent.heartbeat()).status).toBe(200);
    }
    expect(await holders()).toEqual([agent.nodeId]);
    await emit(rt.ctx, { type: 'training.strays', nodeIds: [agent.nodeId] });
    await eventually(async () => {
      await agent.serveOnce();
      expect(agent.containers.has(old)).toBe(false);
    });
    expect(commandsFor(old, 'container.remove')).toHaveLength(2);
    expect(commandsFor(running[0]!, 'container.remove')).toHaveLength(0);
    expect([...agent.containers.keys()]).toContain(running[0]);
  });
});
