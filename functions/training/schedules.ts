import type { AppContext } from '../core/context.js';
import { keys } from '../core/keys.js';
import { updateIf } from '../ports/store.js';
import type { ScheduleSpec } from '../ports/scheduler.js';
import { scheduleExpression } from '../core/schedule-expressions.js';
import { getJob, type JobItem } from './model.js';

/**
 * Schedule ownership. A scheduled job owns exactly one schedule, `job-<job_id>`, whose payload
 * is `{"type":"job.fire","job_id":…}`. There is no transaction over the table and the scheduler,
 * so the job is written first with `scheduleState: 'pending'`, the schedule second, and the job
 * marked `synced` third; a crash in between leaves a pending job that the repair sweep
 * (`jobs.repair`, every 5 minutes) finishes, and a schedule whose job is gone is deleted by the same sweep.
 */

export const JOB_SCHEDULE_PREFIX = 'job-';
export const jobScheduleName = (jobId: string) => `${JOB_SCHEDULE_PREFIX}${jobId}`;

/** One-time schedules for retries too far off for an SQS delay (900 s). */
export const RETRY_SCHEDULE_PREFIX = 'jobretry-';
export const retryScheduleName = (jobId: string) => `${RETRY_SCHEDULE_PREFIX}${jobId}`;

export const firePayload = (jobId: string) => JSON.stringify({ type: 'job.fire', job_id: jobId });

export function jobScheduleSpec(
  job: Pick<JobItem, 'jobId' | 'name' | 'schedule' | 'timezone'>,
): ScheduleSpec {
  if (!job.schedule) throw new Error(`job ${job.jobId} has no schedule`);
  return {
    name: jobScheduleName(job.jobId),
    expression: scheduleExpression(job.schedule, job.timezone),
    timezone: job.timezone,
    payload: firePayload(job.jobId),
    description: `Training job ${job.name}`.slice(0, 512),
  };
}

/**
 * Makes the scheduler match the job (upsert, or delete when it has no schedule), then marks the
 * job synced. If the schedule changed meanwhile, what it says now is written again, so the
 * last writer's schedule is the one that stays. Returns the job as stored after, or undefined
 * when it is gone (its schedule is then removed).
 */
export async function syncJobSchedule(ctx: AppContext, job: JobItem): Promise<JobItem | undefined> {
  const k = keys.job(job.jobId);
  let target = job;
  for (let tries = 0; ; tries++) {
    if (target.schedule) await ctx.scheduler.upsert(jobScheduleSpec(target));
    else await ctx.scheduler.delete(jobScheduleName(target.jobId));
    const synced = await updateIf<JobItem>(
      ctx.store,
      k.pk,
      k.sk,
      { set: { scheduleState: target.schedule ? 'synced' : 'none' } },
      { equals: { scheduleRev: target.scheduleRev, scheduleState: 'pending' } },
    );
    if (synced) return synced;
    const current = await getJob(ctx, job.jobId);
    if (!current) {
      // Deleted while we wrote: the delete may have run before our upsert, so remove it again.
      await ctx.scheduler.delete(jobScheduleName(job.jobId));
      return undefined;
    }
    // Same revision: another writer marked it, with the same schedule. Newer: write that one.
    if (current.scheduleRev === target.scheduleRev || tries >= 3) return current;
    target = current;
  }
}

/** Best-effort sync right after an API write: the repair sweep finishes what fails here. */
export async function trySyncJobSchedule(ctx: AppContext, job: JobItem): Promise<JobItem> {
  try {
    return (await syncJobSchedule(ctx, job)) ?? job;
  } catch (error) {
    ctx.logger.warn('job schedule write failed; the repair sweep will retry it', {
      jobId: job.jobId,
      error: error as Error,
    });
    return job;
  }
}
