import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandEnvelope } from '../../../protocol/commands.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import type { Runtime } from '../../../local/runtime.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';
import { call, embeddedEnv, eventually, jobBody, startTrainingRuntime } from './harness.js';

/** A training run on a drained node ends its attempt there; the retry runs on another node. */
describe('training runs on a drained node (embedded runtime, scripted agents)', () => {
  let rt: Runtime;
  let agents: ScriptedAgent[] = [];
  beforeAll(async () => {
    rt = await startTrainingRuntime(embeddedEnv);
    overrideTrainingSettings(rt.ctx, { retry: { baseSeconds: 1, maxSeconds: 1 } });
    agents = [
      new ScriptedAgent(rt.url, 'train-d1', { gpus: 1 }),
      new ScriptedAgent(rt.url, 'train-d2', { gpus: 1 }),
    ];
    for (const a of agents) {
      await a.register();
      a.start(200);
    }
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await rt?.stop();
  });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const startsOf = (a: ScriptedAgent, jobId: string) =>
    a.seen.filter(
      (e): e is CommandEnvelope & { command: { type: 'container.start' } } =>
        e.command.type === 'container.start' && e.command.spec.env.TRAINING_JOB_ID === jobId,
    );

  it('moves the run: the attempt ends on the drained node, its container is removed, the retry runs elsewhere', async () => {
    const created = await api(
      'POST',
      '/jobs',
      jobBody({ schedule: null, max_retries: 2, resources: { gpus: 1 } }),
    );
    expect(created.status).toBe(201);
    const id = created.body.job_id as string;
    const first = await eventually(async () => {
      const on = agents.find((a) => startsOf(a, id).length === 1);
      expect(on).toBeDefined();
      return on!;
    });
    const other = agents.find((a) => a !== first)!;
    const instanceId = startsOf(first, id)[0]!.command.spec.instanceId;

    const res = await api('POST', `/api/nodes/${first.name}/drain`);
    expect(res.status).toBe(200);
    expect(res.body.moved).toEqual([
      { kind: 'training_run', id, to_node: null, replacement: expect.any(String) },
    ]);
    expect(res.body.not_moved).toEqual([]);

    // The old container is removed from the drained node; the next attempt starts on the other one.
    await eventually(async () => expect(first.containers.has(instanceId)).toBe(false));
    await eventually(async () => expect(startsOf(other, id)).toHaveLength(1), 15_000);
    expect(startsOf(first, id)).toHaveLength(1);
    const job = (await api('GET', `/jobs/${id}`)).body;
    expect(job.retry_count).toBe(1);
    expect(job.error_message).toMatch(/was drained/);
  }, 30_000);
});
