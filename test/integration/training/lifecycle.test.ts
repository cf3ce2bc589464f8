import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandEnvelope } from '../../../protocol/commands.js';
import { sign, SIGNING_SECRET } from '../../../functions/training/notify.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import type { Runtime } from '../../../local/runtime.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';
import {
  call,
  embeddedEnv,
  eventually,
  jobBody,
  startTrainingRuntime,
  webhookReceiver,
  type Received,
} from './harness.js';

/**
 * Runs end to end through the fleet: a scripted agent registers over HTTP, takes container.start
 * from its command queue, and reports exits on POST /agent/events as the real agent does.
 */
describe('training run lifecycle through the fleet (embedded runtime)', () => {
  let rt: Runtime;
  let agent: ScriptedAgent;
  let json: Awaited<ReturnType<typeof webhookReceiver>>;
  let slack: Awaited<ReturnType<typeof webhookReceiver>>;
  let flaky: Awaited<ReturnType<typeof webhookReceiver>>;

  beforeAll(async () => {
    rt = await startTrainingRuntime(embeddedEnv);
    [json, slack, flaky] = await Promise.all([
      webhookReceiver(),
      webhookReceiver(),
      webhookReceiver({ failFirst: 2 }),
    ]);
    overrideTrainingSettings(rt.ctx, {
      retry: { baseSeconds: 1, maxSeconds: 2 },
      checkpointRoot: '/srv/checkpoints',
      webhooks: [
        { url: json.url, format: 'json' },
        { url: slack.url, format: 'slack' },
        { url: flaky.url, format: 'json' },
        // Nobody listens here: it must hold nothing up.
        { url: 'http://127.0.0.1:9/dead', format: 'json' },
      ],
    });
    agent = new ScriptedAgent(rt.url, 'gpu-a', { gpus: 2 });
    await agent.register();
    agent.start(200);
  });
  afterAll(async () => {
    await agent?.stop();
    await rt?.stop();
    await Promise.all([json?.close(), slack?.close(), flaky?.close()]);
  });

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const startsOf = (jobId: string) =>
    agent.seen.filter(
      (e): e is CommandEnvelope & { command: { type: 'container.start' } } =>
        e.command.type === 'container.start' && e.command.spec.env.TRAINING_JOB_ID === jobId,
    );
  /** Waits for start number `n` of the job on the agent, then reports its container's exit. */
  async function exitStart(jobId: string, n: number, exitCode: number, logTail: string) {
    const start = await eventually(async () => {
      const s = startsOf(jobId)[n - 1];
      expect(s).toBeDefined();
      return s!;
    });
    const res = await agent.events([
      {
        type: 'container.exited',
        instanceId: start.command.spec.instanceId,
        kind: 'run',
        exitCode,
        logTail,
        at: new Date().toISOString(),
      },
    ]);
    expect(res.status).toBe(200);
    return start;
  }
  const notificationsOf = (received: Received[], jobId: string) =>
    received
      .map((r) => ({ r, body: JSON.parse(r.body) as Record<string, unknown> }))
      .filter((x) => x.body.job_id === jobId);

  it('fails twice, then succeeds: completed with 2 retries recorded, notified in order, signed', async () => {
    // Prepare
    const created = await api(
      'POST',
      '/jobs',
      jobBody({
        schedule: null,
        max_retries: 3,
        resources: { gpus: 1 },
        checkpoint_path: '/ckpt',
        env: { EPOCHS: '3' },
      }),
    );
    expect(created.status).toBe(201);
    const id = created.body.job_id as string;

    // Act
    const first = await exitStart(id, 1, 1, 'loading data\nRuntimeError: CUDA out of memory\n');
    await exitStart(id, 2, 1, 'NCCL timeout\n');
    await exitStart(id, 3, 0, 'done\n');

    // Assess: the container the agent was told to start
    expect(first.nodeId).toBe(agent.nodeId);
    expect(first.command.spec).toMatchObject({
      kind: 'run',
      imageId: 'gcr.io/my-project/trainer:latest',
      command: ['python', 'train.py', '--epochs', '100'],
      gpus: 1,
      restart: 'no',
      env: { CHECKPOINT_DIR: '/ckpt', EPOCHS: '3', TRAINING_JOB_ID: id, TRAINING_ATTEMPT: '1' },
      volumes: [{ hostPath: `/srv/checkpoints/${id}`, containerPath: '/ckpt', readOnly: false }],
    });
    // The job and its runs
    await eventually(async () =>
      expect((await api('GET', `/jobs/${id}`)).body).toMatchObject({
        status: 'completed',
        retry_count: 2,
        error_message: null,
      }),
    );
    const runs = (await api('GET', `/jobs/${id}/runs`)).body;
    expect(runs.total).toBe(3);
    expect(
      runs.runs.map((r: Record<string, unknown>) => [r.attempt, r.status, r.exit_code, r.node_id]),
    ).toEqual([
      [3, 'succeeded', 0, agent.nodeId],
      [2, 'failed', 1, agent.nodeId],
      [1, 'failed', 1, agent.nodeId],
    ]);
    for (const r of runs.runs) expect(r.ended_at >= r.started_at).toBe(true);
    // Each exited container is removed from the node
    await eventually(async () =>
      expect(agent.seen.filter((e) => e.command.type === 'container.remove')).toHaveLength(3),
    );

    // Notifications: every status change, in order, signed with the stored key
    const expected = [
      ['pending', 'running'],
      ['running', 'retrying'],
      ['retrying', 'running'],
      ['running', 'retrying'],
      ['retrying', 'running'],
      ['running', 'completed'],
    ];
    const got = await eventually(async () => {
      const n = notificationsOf(json.received, id);
      expect(n).toHaveLength(expected.length);
      return n;
    });
    expect(got.map(({ body }) => [body.previous_status, body.status])).toEqual(expected);
    const sequences = got.map(({ body }) => body.sequence as number);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    const secret = (await rt.ctx.secrets.get(SIGNING_SECRET))!;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    for (const { r } of got) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-fleet-signature']).toBe(
        sign(secret, r.headers['x-fleet-timestamp'] as string, r.body),
      );
    }
    expect(got[5]!.body).toMatchObject({
      event: 'job.status_changed',
      name: created.body.name,
      retry_count: 2,
      max_retries: 3,
    });

    // Slack gets {text}, also signed
    const texts = await eventually(async () => {
      const t = slack.received
        .map((r) => JSON.parse(r.body) as { text: string })
        .filter((b) => b.text.includes(id));
      expect(t).toHaveLength(expected.length);
      return t;
    });
    expect(Object.keys(texts[0]!)).toEqual(['text']);
    expect(texts[5]!.text).toContain(`(\`${id}\`) completed (was running), retries 2/3`);
    expect(slack.received[0]!.headers['x-fleet-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);

    // A receiver that failed at first still gets every notification, by redelivery
    await eventually(async () => {
      const n = notificationsOf(flaky.received, id).map(({ body }) => body.sequence as number);
      expect(n.sort((a, b) => a - b)).toEqual(sequences);
    }, 20_000);
  }, 40_000);

  it('always fails: failed after max_retries, with the exit code and log tail in error_message', async () => {
    const { job_id: id } = (await api('POST', '/jobs', jobBody({ schedule: null, max_retries: 1 }))).body;
    await exitStart(id, 1, 2, 'epoch 1\nloss: nan\n');
    await exitStart(id, 2, 2, 'epoch 1\nloss: nan\nValueError: loss is NaN\n');
    await eventually(async () =>
      expect((await api('GET', `/jobs/${id}`)).body).toMatchObject({
        status: 'failed',
        retry_count: 1,
        error_message:
          'Container exited with code 2. Last log lines:\nepoch 1\nloss: nan\nValueError: loss is NaN',
        completed_at: expect.any(String),
      }),
    );
    // Reported twice (the agent retried its POST): nothing more happens
    const last = startsOf(id)[1]!;
    await agent.events([
      {
        type: 'container.exited',
        instanceId: last.command.spec.instanceId,
        kind: 'run',
        exitCode: 2,
        logTail: '',
        at: new Date().toISOString(),
      },
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(startsOf(id)).toHaveLength(2);
    expect((await api('GET', `/jobs/${id}`)).body.retry_count).toBe(1);
    const statuses = notificationsOf(json.received, id).map(({ body }) => body.status);
    expect(statuses).toEqual(['running', 'retrying', 'running', 'failed']);
  }, 30_000);

  it('counts a start the agent refused as a failed attempt', async () => {
    const refusing = new ScriptedAgent(rt.url, 'gpu-refuses', { gpus: 8, failStarts: true });
    await refusing.register();
    try {
      // Only the refusing node has 8 GPUs.
      const { job_id: id } = (
        await api('POST', '/jobs', jobBody({ schedule: null, max_retries: 0, resources: { gpus: 8 } }))
      ).body;
      await eventually(async () => expect(await refusing.serveOnce()).toHaveLength(1));
      await eventually(async () =>
        expect((await api('GET', `/jobs/${id}`)).body).toMatchObject({
          status: 'failed',
          error_message: `Attempt failed: container.start failed on node ${refusing.nodeId}: image not found`,
        }),
      );
    } finally {
      await refusing.stop();
    }
  });
});
