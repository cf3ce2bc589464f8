import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { jobBody } from '../training/harness.js';
import { call, eventually, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = {
  ...process.env,
  LOG_LEVEL: 'SILENT',
  AWS_ENDPOINT_URL: undefined,
  NODE_OFFLINE_AFTER_SECONDS: '5',
  COMMAND_WAIT_MS: '5000',
};

/** Orchestrator copies and training runs book one node's capacity together. */
describe('one capacity model for services and training runs (embedded runtime)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    rt = await startRuntime({ port: 0, env });
    overrideTrainingSettings(rt.ctx, { placementRetrySeconds: 1, retry: { baseSeconds: 1, maxSeconds: 1 } });
    agent = new ScriptedAgent(rt.url, 'gpu-only', { gpus: 1 });
    await agent.register();
    await agent.heartbeat();
    agent.start(300);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
  });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const runsOf = async (jobId: string) =>
    (await api('GET', `/jobs/${jobId}/runs`)).body.runs as { status: string; waiting_reason?: string }[];

  it('a service copy holding the only GPU keeps a GPU run waiting, which starts once the copy stops', async () => {
    // Prepare: the service takes the GPU.
    const started = await api('POST', '/containers/vllm:1/start', { count: 1, resources: { gpus: 1 } });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const [copy] = started.body.started as string[];
    // Act
    const job = await api('POST', '/jobs', jobBody({ schedule: null, resources: { gpus: 1 } }));
    expect(job.status).toBe(201);
    const jobId = job.body.job_id as string;
    // Assess: waiting for capacity, not started.
    await eventually(async () =>
      expect((await runsOf(jobId))[0]).toMatchObject({
        status: 'pending',
        waiting_reason: expect.stringContaining('free capacity'),
      }),
    );
    expect(
      agent.seen.some(
        (e) => e.command.type === 'container.start' && e.command.spec.env.TRAINING_JOB_ID === jobId,
      ),
    ).toBe(false);
    // The copy stops: the run gets the GPU.
    expect((await api('POST', '/containers/vllm:1/stop', { instanceId: copy })).status).toBe(200);
    await eventually(
      async () => expect((await api('GET', `/jobs/${jobId}`)).body.status).toBe('running'),
      10_000,
    );
  });

  it('a running GPU run makes a GPU service start a 409 that changes nothing', async () => {
    // The run of the previous test holds the GPU.
    const refused = await api('POST', '/containers/sdxl:1/start', { count: 1, resources: { gpus: 1 } });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/no online node has enough free resources/);
    const images = (await api('GET', '/images')).body.images as { image: string }[];
    expect(images.some((i) => i.image === 'sdxl:1')).toBe(false);
  });
});
