import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import { repairJobs } from '../../../functions/training/repair.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import type { Runtime } from '../../../local/runtime.js';
import {
  call,
  embeddedEnv,
  eventually,
  jobBody,
  RecordingLauncher,
  startTrainingRuntime,
} from './harness.js';

/**
 * Firings on the runtime's injected clock: the schedule driver, the events queue's delays and
 * every timestamp read `clock`, which only the test moves.
 */
describe('job firings on an injected clock (embedded runtime)', () => {
  let clock = Date.parse('2026-03-10T01:58:00.000Z');
  let rt: Runtime;
  let launcher: RecordingLauncher;
  beforeAll(async () => {
    // The driver re-reads schedules only when told (refreshMs far beyond any clock move here).
    rt = await startTrainingRuntime(embeddedEnv, {
      now: () => clock,
      scheduleRefreshMs: 10 * 365 * 86_400_000,
    });
    launcher = new RecordingLauncher(() => clock).install(rt);
    overrideTrainingSettings(rt.ctx, {
      retry: { baseSeconds: 60, maxSeconds: 3600 },
      placementRetrySeconds: 30,
    });
  });
  afterAll(async () => {
    await rt?.stop();
  });
  beforeEach(() => {
    launcher.full = false;
    launcher.offline.clear();
  });

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const launchesOf = (jobId: string) => launcher.launches.filter((l) => l.spec.env.TRAINING_JOB_ID === jobId);
  const job = async (jobId: string) => (await api('GET', `/jobs/${jobId}`)).body;
  const runs = async (jobId: string) =>
    (await api('GET', `/jobs/${jobId}/runs`)).body.runs as Record<string, unknown>[];
  /** Moves the clock and lets the driver and the event worker act on it. */
  async function advanceTo(iso: string) {
    clock = Date.parse(iso);
    await rt.driver.tick();
  }
  const settle = () => new Promise((r) => setTimeout(r, 700));
  const exited = (l: { nodeId: string; spec: { instanceId: string } }, exitCode: number, logTail = '') =>
    emit(rt.ctx, {
      type: 'agent.container.exited',
      nodeId: l.nodeId,
      instanceId: l.spec.instanceId,
      kind: 'run',
      exitCode,
      logTail,
      at: new Date(clock).toISOString(),
    });

  it('fires a 0 2 * * * job at 02:00 UTC, not at 01:59', async () => {
    // Prepare
    clock = Date.parse('2026-03-10T01:58:00.000Z');
    const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: '0 2 * * *' }))).body;
    await rt.driver.refresh();
    expect(rt.driver.pending()[`job-${job_id}`]).toBe('2026-03-10T02:00:00.000Z');

    // Act + Assess: nothing at 01:59, nor a millisecond before 02:00
    await advanceTo('2026-03-10T01:59:00.000Z');
    await advanceTo('2026-03-10T01:59:59.999Z');
    await settle();
    expect(launchesOf(job_id)).toEqual([]);
    expect((await job(job_id)).status).toBe('pending');

    // 02:00: one run, started at 02:00
    await advanceTo('2026-03-10T02:00:00.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(1));
    expect(launchesOf(job_id)[0]!.at).toBe(Date.parse('2026-03-10T02:00:00.000Z'));
    expect(await job(job_id)).toMatchObject({ status: 'running', started_at: '2026-03-10T02:00:00' });
    expect(await runs(job_id)).toMatchObject([
      {
        attempt: 1,
        status: 'running',
        node_id: 'node-1',
        scheduled_at: '2026-03-10T02:00:00',
        started_at: '2026-03-10T02:00:00',
      },
    ]);
    expect(rt.driver.pending()[`job-${job_id}`]).toBe('2026-03-11T02:00:00.000Z');

    // A duplicated delivery of the same firing starts nothing more
    await emit(rt.ctx, { type: 'job.fire', job_id });
    await emit(rt.ctx, { type: 'job.fire', job_id });
    await settle();
    expect(launchesOf(job_id)).toHaveLength(1);
    expect(await runs(job_id)).toHaveLength(1);

    // The next day's firing while that run still goes is skipped, and recorded once
    await advanceTo('2026-03-11T02:00:00.000Z');
    await emit(rt.ctx, { type: 'job.fire', job_id });
    await eventually(async () => expect((await job(job_id)).skipped_firings).toBe(1));
    await settle();
    expect(launchesOf(job_id)).toHaveLength(1);
    expect((await runs(job_id))[0]).toMatchObject({
      status: 'skipped',
      attempt: null,
      scheduled_at: '2026-03-11T02:00:00',
    });

    // It ends; the firing after that runs again
    await exited(launchesOf(job_id)[0]!, 0);
    await eventually(async () => expect((await job(job_id)).status).toBe('completed'));
    await advanceTo('2026-03-12T02:00:00.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(2));
  });

  it('reads the schedule in the job time zone', async () => {
    clock = Date.parse('2026-03-20T00:30:00.000Z');
    const { job_id } = (
      await api('POST', '/jobs', jobBody({ schedule: '0 2 * * *', timezone: 'Europe/Berlin' }))
    ).body;
    await rt.driver.refresh();
    // 02:00 in Berlin (UTC+1 in March, before summer time) is 01:00 UTC.
    await advanceTo('2026-03-20T00:59:59.000Z');
    await settle();
    expect(launchesOf(job_id)).toEqual([]);
    await advanceTo('2026-03-20T01:00:00.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(1));
    expect((await runs(job_id))[0]).toMatchObject({ scheduled_at: '2026-03-20T01:00:00' });
  });

  it('retries with exponential backoff through delayed events, then fails with the log tail', async () => {
    clock = Date.parse('2026-04-01T10:00:00.000Z');
    const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: null, max_retries: 2 }))).body;
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(1));

    await exited(launchesOf(job_id)[0]!, 1, 'epoch 1\nCUDA error: out of memory\n');
    await eventually(async () => expect((await job(job_id)).status).toBe('retrying'));
    expect(await job(job_id)).toMatchObject({
      retry_count: 1,
      error_message: expect.stringContaining('Container exited with code 1'),
    });
    // First retry after 60 s: not a second early
    await advanceTo('2026-04-01T10:00:59.000Z');
    await settle();
    expect(launchesOf(job_id)).toHaveLength(1);
    await advanceTo('2026-04-01T10:01:00.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(2));
    expect(launchesOf(job_id)[1]!.spec.env.TRAINING_ATTEMPT).toBe('2');

    // Second retry after 120 s
    await advanceTo('2026-04-01T10:02:00.000Z');
    await exited(launchesOf(job_id)[1]!, 1, 'again\n');
    await eventually(async () => expect((await job(job_id)).retry_count).toBe(2));
    await advanceTo('2026-04-01T10:03:59.000Z');
    await settle();
    expect(launchesOf(job_id)).toHaveLength(2);
    await advanceTo('2026-04-01T10:04:00.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(3));

    // Out of retries
    await exited(launchesOf(job_id)[2]!, 137, 'step 9\nKilled\n');
    await eventually(async () => expect((await job(job_id)).status).toBe('failed'));
    expect(await job(job_id)).toMatchObject({
      retry_count: 2,
      error_message: 'Container exited with code 137. Last log lines:\nstep 9\nKilled',
      completed_at: '2026-04-01T10:04:00',
    });
    expect((await runs(job_id)).map((r) => [r.attempt, r.status, r.exit_code])).toEqual([
      [3, 'failed', 137],
      [2, 'failed', 1],
      [1, 'failed', 1],
    ]);
  });

  it('puts a retry beyond the SQS delay limit on a one-time schedule', async () => {
    overrideTrainingSettings(rt.ctx, { retry: { baseSeconds: 1800, maxSeconds: 7200 } });
    try {
      clock = Date.parse('2026-05-01T10:00:00.000Z');
      const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: null }))).body;
      await eventually(async () => expect(launchesOf(job_id)).toHaveLength(1));
      await exited(launchesOf(job_id)[0]!, 1);
      await eventually(async () =>
        expect(await rt.ctx.scheduler.get(`jobretry-${job_id}`)).toMatchObject({
          expression: 'at(2026-05-01T10:30:00)',
          timezone: 'UTC',
        }),
      );
      await rt.driver.refresh();
      await advanceTo('2026-05-01T10:29:59.000Z');
      await settle();
      expect(launchesOf(job_id)).toHaveLength(1);
      await advanceTo('2026-05-01T10:30:00.000Z');
      await eventually(async () => expect(launchesOf(job_id)).toHaveLength(2));
      // Its work done, the one-time schedule goes
      await eventually(async () => expect(await rt.ctx.scheduler.get(`jobretry-${job_id}`)).toBeUndefined());
    } finally {
      overrideTrainingSettings(rt.ctx, { retry: { baseSeconds: 60, maxSeconds: 3600 } });
    }
  });

  it('counts a node lost during a run as a failed attempt and runs the next one elsewhere', async () => {
    clock = Date.parse('2026-06-01T10:00:00.000Z');
    const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: null, max_retries: 3 }))).body;
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(1));
    expect(launchesOf(job_id)[0]!.nodeId).toBe('node-1');

    // The fleet's sweep reports node-1 offline
    await emit(rt.ctx, { type: 'node.offline', nodeId: 'node-1' });
    await eventually(async () => expect((await job(job_id)).status).toBe('retrying'));
    expect((await job(job_id)).error_message).toBe('Attempt failed: node node-1 went offline during the run');
    expect((await runs(job_id))[1]).toMatchObject({
      status: 'failed',
      node_id: 'node-1',
      exit_code: null,
      error: 'node node-1 went offline during the run',
    });

    await advanceTo('2026-06-01T10:01:00.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(2));
    expect(launchesOf(job_id)[1]!.nodeId).toBe('node-2');

    // A node.offline event lost: the repair sweep finds the run on a silent node
    launcher.offline.add('node-2');
    await repairJobs(rt.ctx);
    expect(await job(job_id)).toMatchObject({ status: 'retrying', retry_count: 2 });
  });

  it('fires a run-once job whose firing event was lost, from the repair sweep', async () => {
    // Prepare: the queue refuses the firing the create sends
    clock = Date.parse('2026-08-01T10:00:00.000Z');
    const send = rt.ctx.queue.send.bind(rt.ctx.queue);
    rt.ctx.queue.send = async () => {
      throw new Error('queue unavailable');
    };
    let jobId: string;
    try {
      const res = await api('POST', '/jobs', jobBody({ schedule: null }));
      expect(res.status).toBe(201);
      jobId = res.body.job_id as string;
    } finally {
      rt.ctx.queue.send = send;
    }
    await settle();
    expect(launchesOf(jobId)).toEqual([]);
    // Act: a sweep within the grace period leaves it to the event; one after fires it
    expect((await repairJobs(rt.ctx)).firingsRequested).not.toContain(jobId);
    clock += 61_000;
    expect((await repairJobs(rt.ctx)).firingsRequested).toContain(jobId);
    // Assess
    expect(launchesOf(jobId)).toHaveLength(1);
    expect((await runs(jobId))[0]).toMatchObject({ status: 'running', scheduled_at: '2026-08-01T10:00:00' });
    expect((await repairJobs(rt.ctx)).firingsRequested).not.toContain(jobId);
  });

  it('keeps a run pending while no node has room, and starts it when one has', async () => {
    clock = Date.parse('2026-07-01T10:00:00.000Z');
    launcher.full = true;
    const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: null, resources: { gpus: 1 } }))).body;
    await eventually(async () =>
      expect((await runs(job_id))[0]).toMatchObject({
        status: 'pending',
        waiting_reason: expect.stringContaining('free capacity'),
      }),
    );
    expect((await job(job_id)).status).toBe('pending');
    launcher.full = false;
    await advanceTo('2026-07-01T10:00:30.000Z');
    await eventually(async () => expect(launchesOf(job_id)).toHaveLength(1));
    expect(launchesOf(job_id)[0]!.spec.gpus).toBe(1);
    expect((await job(job_id)).status).toBe('running');
  });
});
