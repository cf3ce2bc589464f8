import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../../functions/core/events.js';
import { keys } from '../../../functions/core/keys.js';
import { getJob } from '../../../functions/training/model.js';
import { repairJobs } from '../../../functions/training/repair.js';
import { runMinute } from '../../../functions/minute.js';
import type { Runtime } from '../../../local/runtime.js';
import { requireMoto } from '../../harness/services.js';
import {
  call,
  embeddedEnv,
  emulatorEnv,
  eventually,
  jobBody,
  RecordingLauncher,
  startTrainingRuntime,
} from './harness.js';

const moto = requireMoto();

const modes = [
  { name: 'embedded', env: embeddedEnv, skip: false },
  {
    name: `emulator (moto)${moto.available ? '' : ` [skipped: ${moto.reason}]`}`,
    env: emulatorEnv(process.env.AWS_ENDPOINT_URL),
    skip: !moto.available,
  },
];

describe.each(modes)('job schedules on the scheduler port, $name', (mode) => {
  let rt: Runtime;
  beforeAll(async () => {
    if (mode.skip) return;
    rt = await startTrainingRuntime(mode.env);
    new RecordingLauncher().install(rt);
  });
  afterAll(async () => {
    await rt?.stop();
  });
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const schedule = (jobId: string) => rt.ctx.scheduler.get(`job-${jobId}`);

  it.skipIf(mode.skip)(
    'creates job-<id> with the job, changes it with the job, deletes it with the job',
    async () => {
      // Create: weekdays at 02:00 Berlin time
      const created = await api(
        'POST',
        '/jobs',
        jobBody({ schedule: '0 2 * * 1-5', timezone: 'Europe/Berlin' }),
      );
      expect(created.status).toBe(201);
      const id = created.body.job_id as string;
      expect(created.body).toMatchObject({ schedule: '0 2 * * 1-5', timezone: 'Europe/Berlin' });
      expect(await schedule(id)).toMatchObject({
        name: `job-${id}`,
        expression: 'cron(0 2 ? * 2-6 *)',
        timezone: 'Europe/Berlin',
        payload: JSON.stringify({ type: 'job.fire', job_id: id }),
        enabled: true,
      });

      // Update: daily 03:30 UTC
      const updated = await api('PUT', `/jobs/${id}`, { schedule: '30 3 * * *', timezone: 'UTC' });
      expect(updated.status).toBe(200);
      expect(await schedule(id)).toMatchObject({ expression: 'cron(30 3 * * ? *)', timezone: 'UTC' });

      // A change that does not touch the schedule leaves it alone
      await api('PUT', `/jobs/${id}`, { max_retries: 1 });
      expect(await schedule(id)).toMatchObject({ expression: 'cron(30 3 * * ? *)' });

      // Schedule removed, then back
      expect((await api('PUT', `/jobs/${id}`, { schedule: null })).body.schedule).toBeNull();
      expect(await schedule(id)).toBeUndefined();
      await api('PUT', `/jobs/${id}`, { schedule: '0 4 1 * *' });
      expect(await schedule(id)).toMatchObject({ expression: 'cron(0 4 1 * ? *)' });

      // Delete
      expect((await api('DELETE', `/jobs/${id}`)).status).toBe(204);
      expect(await schedule(id)).toBeUndefined();
    },
  );

  it.skipIf(mode.skip)('gives a job without schedule no schedule', async () => {
    const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: null }))).body;
    expect(await schedule(job_id)).toBeUndefined();
  });

  it.skipIf(mode.skip)(
    'runs the repair sweep from the minute schedule on every 5th minute only',
    async () => {
      // Prepare: a schedule whose job is gone
      const orphan = 'job-train-0ddba11';
      await rt.ctx.scheduler.upsert({
        name: orphan,
        expression: 'cron(0 3 * * ? *)',
        timezone: 'UTC',
        payload: JSON.stringify({ type: 'job.fire', job_id: 'train-0ddba11' }),
      });
      // Act and assess: minute 7 runs no part; minute 10 the repair (not the 15-minute migration)
      expect((await runMinute(rt.ctx, 7 * 60_000)).parts).toEqual({});
      expect(await rt.ctx.scheduler.get(orphan)).toBeDefined();
      expect((await runMinute(rt.ctx, 10 * 60_000)).parts).toEqual({ 'training-repair': 'done' });
      expect(await rt.ctx.scheduler.get(orphan)).toBeUndefined();
      expect(await rt.ctx.scheduler.get('training-repair')).toBeUndefined();
    },
  );

  it.skipIf(mode.skip)('repairs a schedule write that failed after the job write', async () => {
    // Prepare: the scheduler fails once, between the job write and the schedule write
    const upsert = rt.ctx.scheduler.upsert.bind(rt.ctx.scheduler);
    rt.ctx.scheduler.upsert = async () => {
      throw new Error('scheduler unavailable');
    };
    let id: string;
    try {
      const res = await api('POST', '/jobs', jobBody({ schedule: '15 1 * * *' }));
      expect(res.status).toBe(201);
      id = res.body.job_id as string;
    } finally {
      rt.ctx.scheduler.upsert = upsert;
    }
    expect(await schedule(id)).toBeUndefined();
    expect((await getJob(rt.ctx, id))?.scheduleState).toBe('pending');
    // Act
    const report = await repairJobs(rt.ctx);
    // Assess
    expect(report.schedulesSynced).toContain(id);
    expect(await schedule(id)).toMatchObject({ expression: 'cron(15 1 * * ? *)' });
    expect((await getJob(rt.ctx, id))?.scheduleState).toBe('synced');
  });

  it.skipIf(mode.skip)('deletes orphan job schedules, and puts back one deleted by hand', async () => {
    // Prepare: a schedule whose job is gone (a delete that died after the job), and a job whose schedule vanished
    const orphan = 'job-train-0badf00d';
    await rt.ctx.scheduler.upsert({
      name: orphan,
      expression: 'cron(0 2 * * ? *)',
      timezone: 'UTC',
      payload: JSON.stringify({ type: 'job.fire', job_id: 'train-0badf00d' }),
    });
    const { job_id } = (await api('POST', '/jobs', jobBody({ schedule: '0 5 * * 0' }))).body;
    await rt.ctx.scheduler.delete(`job-${job_id}`);
    // Act: through the events queue, as the jobs.repair event arrives
    await emit(rt.ctx, { type: 'jobs.repair' });
    // Assess
    await eventually(async () => {
      expect(await rt.ctx.scheduler.get(orphan)).toBeUndefined();
      expect(await schedule(job_id)).toMatchObject({ expression: 'cron(0 5 ? * 1 *)' });
    }, 15_000);
  });

  it.skipIf(mode.skip)('finishes a delete that died before removing the schedule', async () => {
    const { job_id } = (await api('POST', '/jobs', jobBody())).body;
    const remove = rt.ctx.scheduler.delete.bind(rt.ctx.scheduler);
    rt.ctx.scheduler.delete = async () => {
      throw new Error('scheduler unavailable');
    };
    try {
      expect((await api('DELETE', `/jobs/${job_id}`)).status).toBe(204);
    } finally {
      rt.ctx.scheduler.delete = remove;
    }
    expect(await schedule(job_id)).toBeDefined();
    expect((await repairJobs(rt.ctx)).orphanSchedulesDeleted).toContain(`job-${job_id}`);
    expect(await schedule(job_id)).toBeUndefined();
  });

  it.skipIf(mode.skip)(
    'takes over a name left claimed by a create that died before writing its job',
    async () => {
      const name = `stale-${Date.now()}`;
      await rt.ctx.store.put({ ...keys.jobName(name), jobId: 'train-00c0ffee', name });
      const res = await api('POST', '/jobs', jobBody({ name }));
      expect(res.status).toBe(201);
      expect((await api('POST', '/jobs', jobBody({ name }))).status).toBe(409);
    },
  );
});
