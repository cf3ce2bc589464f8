import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainingEventHandlers } from '../../../functions/training/events.js';
import type { Runtime } from '../../../local/runtime.js';
import {
  call,
  embeddedEnv,
  eventually,
  jobBody,
  RecordingLauncher,
  startTrainingRuntime,
} from './harness.js';

const NAIVE_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;

describe('Training Job Orchestrator API (embedded runtime)', () => {
  let rt: Runtime;
  let launcher: RecordingLauncher;
  beforeAll(async () => {
    rt = await startTrainingRuntime(embeddedEnv);
    launcher = new RecordingLauncher().install(rt);
  });
  afterAll(async () => {
    await rt?.stop();
  });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  /** An unscheduled job runs at once; with the recording launcher it is then running. */
  async function runningJob(overrides: Record<string, unknown> = {}) {
    const created = await api('POST', '/jobs', jobBody({ schedule: null, ...overrides }));
    expect(created.status).toBe(201);
    const id = created.body.job_id as string;
    await eventually(async () => expect((await api('GET', `/jobs/${id}`)).body.status).toBe('running'));
    return id;
  }

  async function exit(jobId: string, exitCode: number) {
    const runs = (await api('GET', `/jobs/${jobId}/runs`)).body.runs as {
      run_id: string;
      node_id: string;
      status: string;
    }[];
    const run = runs.find((r) => r.status === 'running')!;
    await trainingEventHandlers['agent.container.exited']!(
      {
        type: 'agent.container.exited',
        nodeId: run.node_id,
        instanceId: run.run_id,
        kind: 'run',
        exitCode,
        logTail: `exit ${exitCode}\n`,
        at: new Date().toISOString(),
      },
      rt.ctx,
    );
  }

  it('creates a job with every documented field', async () => {
    // Act
    const res = await api('POST', '/jobs', {
      name: 'resnet50-training',
      image: 'gcr.io/my-project/trainer:latest',
      command: ['python', 'train.py', '--model', 'resnet50', '--epochs', '100'],
      schedule: '0 2 * * *',
      max_retries: 3,
      checkpoint_path: '/checkpoints/resnet50',
    });
    // Assess
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      job_id: expect.stringMatching(/^train-[0-9a-f]{8}$/),
      name: 'resnet50-training',
      image: 'gcr.io/my-project/trainer:latest',
      command: ['python', 'train.py', '--model', 'resnet50', '--epochs', '100'],
      schedule: '0 2 * * *',
      timezone: 'UTC',
      max_retries: 3,
      retry_count: 0,
      checkpoint_path: '/checkpoints/resnet50',
      status: 'pending',
      started_at: null,
      completed_at: null,
      error_message: null,
      created_at: expect.stringMatching(NAIVE_UTC),
      updated_at: expect.stringMatching(NAIVE_UTC),
    });
    expect((await api('GET', `/jobs/${res.body.job_id}`)).body).toEqual(res.body);
  });

  it('defaults max_retries to 3 and runs a job without schedule once, now', async () => {
    const res = await api('POST', '/jobs', {
      name: 'bert-once',
      image: 'trainer:1',
      command: ['python', 'finetune.py'],
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ schedule: null, max_retries: 3, checkpoint_path: null });
    await eventually(async () => {
      const job = (await api('GET', `/jobs/${res.body.job_id}`)).body;
      expect(job.status).toBe('running');
      expect(job.started_at).toMatch(NAIVE_UTC);
    });
    const launch = launcher.launches.find((l) => l.spec.env.TRAINING_JOB_ID === res.body.job_id)!;
    expect(launch.spec).toMatchObject({
      kind: 'run',
      imageId: 'trainer:1',
      command: ['python', 'finetune.py'],
      restart: 'no',
      env: { CHECKPOINT_DIR: '/checkpoints' },
      volumes: [
        {
          hostPath: `/var/lib/fleet/checkpoints/${res.body.job_id}`,
          containerPath: '/checkpoints',
          readOnly: false,
        },
      ],
    });
  });

  it.each([
    [{ name: undefined }, ['body', 'name'], 'field required'],
    [
      { schedule: '61 2 * * *' },
      ['body', 'schedule'],
      "Invalid cron schedule '61 2 * * *': Invalid value for minute: 61",
    ],
    [{ schedule: '0 2 * *' }, ['body', 'schedule'], 'schedule must have 5 fields'],
    [{ schedule: '0 2 1 * MON' }, ['body', 'schedule'], 'both day-of-month and day-of-week'],
    [{ timezone: 'Mars/Olympus' }, ['body', 'timezone'], "Unknown time zone 'Mars/Olympus'"],
    [{ max_retries: -1 }, ['body', 'max_retries'], ''],
    [{ command: [] }, ['body', 'command'], 'command needs at least one element'],
    [{ checkpoint_path: 'relative/dir' }, ['body', 'checkpoint_path'], 'absolute path'],
  ])('refuses %j with 400 saying why', async (override, loc, msg) => {
    const res = await api('POST', '/jobs', jobBody(override));
    expect(res.status).toBe(400);
    expect(res.body.detail[0].loc).toEqual(loc);
    expect(res.body.detail[0].msg).toContain(msg);
    expect(res.body.error_type).toBe('ValidationError');
  });

  it("gives every error of the training paths an error_type, the pipeline's too", async () => {
    const bad = await fetch(`${rt.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    const wrongMethod = await api('PATCH', '/jobs');
    const unknown = await api('GET', '/jobs/train-00000000/nothing');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ detail: expect.any(Array), error_type: 'ValidationError' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body).toEqual({ detail: expect.any(String), error_type: 'MethodNotAllowedError' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: expect.any(String), error_type: 'NotFoundError' });
  });

  it('refuses a second job of the same name with 409', async () => {
    const body = jobBody();
    expect((await api('POST', '/jobs', body)).status).toBe(201);
    const again = await api('POST', '/jobs', { ...body, image: 'other:1' });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({
      detail: `A job named '${body.name}' already exists`,
      error_type: 'DuplicateJobNameError',
    });
  });

  it('answers 404 with detail and error_type for a job that does not exist', async () => {
    for (const [method, path] of [
      ['GET', '/jobs/train-00000000'],
      ['PUT', '/jobs/train-00000000'],
      ['DELETE', '/jobs/train-00000000'],
      ['POST', '/jobs/train-00000000/retry'],
      ['GET', '/jobs/train-00000000/runs'],
      ['GET', '/jobs/not-a-job-id'],
    ] as const) {
      const res = await api(method, path, method === 'PUT' ? { max_retries: 1 } : undefined);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error_type).toBe('JobNotFoundError');
      expect(res.body.detail).toMatch(/^Job .+ not found$/);
    }
  });

  it('pages the list newest first, with the total and a status filter', async () => {
    const prefix = `page-${Date.now()}`;
    for (let i = 0; i < 5; i++) await api('POST', '/jobs', jobBody({ name: `${prefix}-${i}` }));
    const all = (await api('GET', '/jobs?page_size=100')).body;
    const mine = (all.jobs as { name: string }[]).filter((j) => j.name.startsWith(prefix)).map((j) => j.name);
    expect(mine).toEqual([4, 3, 2, 1, 0].map((i) => `${prefix}-${i}`));
    expect(all).toMatchObject({ total: all.jobs.length, page: 1, page_size: 100 });

    const page1 = (await api('GET', '/jobs?page=1&page_size=2')).body;
    const page2 = (await api('GET', '/jobs?page=2&page_size=2')).body;
    expect(page1).toMatchObject({ page: 1, page_size: 2, total: all.total });
    expect(page1.jobs).toHaveLength(2);
    expect(page2.jobs.map((j: { job_id: string }) => j.job_id)).toEqual(
      all.jobs.slice(2, 4).map((j: { job_id: string }) => j.job_id),
    );
    expect((await api('GET', `/jobs?page=${all.total + 1}&page_size=1`)).body.jobs).toEqual([]);

    const pending = (await api('GET', '/jobs?status_filter=pending&page_size=100')).body;
    expect(pending.jobs.every((j: { status: string }) => j.status === 'pending')).toBe(true);
    expect(pending.jobs.length).toBe(pending.total);
    expect((await api('GET', '/jobs')).body.page_size).toBe(50);
    expect((await api('GET', '/jobs?status_filter=sleeping')).status).toBe(400);
    expect((await api('GET', '/jobs?page=0')).status).toBe(400);
    expect((await api('GET', '/jobs?page_size=101')).status).toBe(400);
  });

  it('updates a job, renames it (freeing the old name) and refuses a taken name', async () => {
    const a = (await api('POST', '/jobs', jobBody())).body;
    const b = (await api('POST', '/jobs', jobBody())).body;
    const res = await api('PUT', `/jobs/${a.job_id}`, {
      schedule: '0 3 * * *',
      max_retries: 5,
      name: `${a.name}-v2`,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      job_id: a.job_id,
      schedule: '0 3 * * *',
      max_retries: 5,
      name: `${a.name}-v2`,
      image: a.image,
    });
    expect((await api('POST', '/jobs', jobBody({ name: a.name }))).status).toBe(201);
    const taken = await api('PUT', `/jobs/${a.job_id}`, { name: b.name });
    expect(taken.status).toBe(409);
    expect(taken.body.error_type).toBe('DuplicateJobNameError');
    const bad = await api('PUT', `/jobs/${a.job_id}`, { schedule: 'every day' });
    expect(bad.status).toBe(400);
    expect(bad.body.detail[0].loc).toEqual(['body', 'schedule']);
  });

  it('refuses to update or delete a running job (409), and to retry one that has not failed', async () => {
    const id = await runningJob();
    const put = await api('PUT', `/jobs/${id}`, { max_retries: 1 });
    expect(put.status).toBe(409);
    expect(put.body).toEqual({
      detail: `Cannot update job ${id} while it is running`,
      error_type: 'JobRunningError',
    });
    const del = await api('DELETE', `/jobs/${id}`);
    expect(del.status).toBe(409);
    expect(del.body).toEqual({
      detail: `Cannot delete job ${id} while it is running`,
      error_type: 'JobRunningError',
    });
    const retry = await api('POST', `/jobs/${id}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body.error_type).toBe('InvalidJobStateError');
  });

  it('deletes a job (204): gone, and its name free again', async () => {
    const body = jobBody();
    const { job_id } = (await api('POST', '/jobs', body)).body;
    const res = await fetch(`${rt.url}/jobs/${job_id}`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect((await api('GET', `/jobs/${job_id}`)).status).toBe(404);
    expect((await api('POST', '/jobs', body)).status).toBe(201);
  });

  it('retries a failed job: pending, retry count 0, no error, and running again', async () => {
    const id = await runningJob({ max_retries: 0 });
    await exit(id, 3);
    const failed = (await api('GET', `/jobs/${id}`)).body;
    expect(failed).toMatchObject({
      status: 'failed',
      error_message: expect.stringContaining('exited with code 3'),
    });
    const res = await api('POST', `/jobs/${id}/retry`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      job_id: id,
      status: 'pending',
      retry_count: 0,
      error_message: null,
      completed_at: null,
    });
    await eventually(async () => expect((await api('GET', `/jobs/${id}`)).body.status).toBe('running'));
    const runs = (await api('GET', `/jobs/${id}/runs`)).body;
    expect(runs.total).toBe(2);
    expect(runs.runs.map((r: { status: string; attempt: number }) => [r.status, r.attempt])).toEqual([
      ['running', 1],
      ['failed', 1],
    ]);
  });

  it('counts jobs per status exactly after concurrent, duplicated status changes', async () => {
    // Prepare: 20 running jobs
    const before = (await api('GET', '/stats')).body;
    const ids = await Promise.all(Array.from({ length: 20 }, () => runningJob({ max_retries: 0 })));
    const mid = (await api('GET', '/stats')).body;
    expect(mid.running).toBe(before.running + 20);
    // Act: every exit reported twice, all at once; half succeed
    await Promise.all(ids.flatMap((id, i) => [exit(id, i % 2), exit(id, i % 2)]));
    // Assess
    const after = (await api('GET', '/stats')).body;
    expect(after).toEqual({
      ...before,
      completed: before.completed + 10,
      failed: before.failed + 10,
      total_jobs: before.total_jobs + 20,
    });
    // The same counts when the status index answers 3 items a page
    const query = rt.ctx.store.query.bind(rt.ctx.store);
    rt.ctx.store.query = (pk, options = {}) => query(pk, { ...options, limit: 3 });
    try {
      expect((await api('GET', '/stats')).body).toEqual(after);
    } finally {
      rt.ctx.store.query = query;
    }
    const list = (await api('GET', '/jobs?page_size=100')).body;
    expect(after.total_jobs).toBe(list.total);
    const byStatus = Object.fromEntries(
      ['pending', 'running', 'completed', 'failed', 'retrying'].map((s) => [
        s,
        list.jobs.filter((j: { status: string }) => j.status === s).length,
      ]),
    );
    expect(after).toMatchObject(byStatus);
  });
});
