import type { AppContext } from '../core/context.js';
import { keys, trainingKeys } from '../core/keys.js';
import { queryAll, updateIf } from '../ports/store.js';
import type { ScheduleSpec, StoredSchedule } from '../ports/scheduler.js';
import { activeRuns, getRun, parseRunKey, runKey, type JobItem } from './model.js';
import { endAttempt, fireJob, resumeJob } from './runs.js';
import {
  JOB_SCHEDULE_PREFIX,
  jobScheduleName,
  jobScheduleSpec,
  RETRY_SCHEDULE_PREFIX,
  syncJobSchedule,
} from './schedules.js';

/**
 * The `jobs.repair` sweep (the minute schedule, every 5th minute): puts right what a crash between
 * two writes, or a lost event, left behind.
 *   - jobs whose schedule write is pending, or whose schedule differs from or is missing on the
 *     scheduler, are synced; `job-*` schedules without a job are deleted;
 *   - firings asked for and never claimed are fired; runs stuck between steps are moved on; runs
 *     on nodes gone offline count as failed attempts; active runs no job is on are cancelled;
 *   - one-time retry schedules no longer needed are deleted;
 * Containers of ended runs that online nodes still report are not its job: the node sweep hands
 * the nodes listing run containers to `training.strays` (no sweep here reads the fleet).
 */

/** Gives queued events (a delayed launch, a firing just asked for) this long before the sweep steps in. */
const GRACE_MS = 60_000;
/** A container.start still unanswered after this is sent again (the agent runs a command id once). */
const RESEND_AFTER_MS = 5 * 60_000;

export interface RepairReport {
  schedulesSynced: string[];
  orphanSchedulesDeleted: string[];
  retrySchedulesDeleted: string[];
  firingsRequested: string[];
  runsResumed: string[];
  runsCancelled: string[];
  errors: number;
}

const sameSchedule = (have: StoredSchedule | undefined, want: ScheduleSpec) =>
  have !== undefined &&
  have.expression === want.expression &&
  (have.timezone ?? 'UTC') === want.timezone &&
  have.payload === want.payload &&
  have.enabled;

export async function repairJobs(ctx: AppContext): Promise<RepairReport> {
  const report: RepairReport = {
    schedulesSynced: [],
    orphanSchedulesDeleted: [],
    retrySchedulesDeleted: [],
    firingsRequested: [],
    runsResumed: [],
    runsCancelled: [],
    errors: 0,
  };
  const guarded = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      report.errors++;
      ctx.logger.error('job repair step failed', { what, error: error as Error });
    }
  };

  // Schedules are listed before jobs are read: a job seen here is at least as new as its schedule.
  const schedules = new Map((await ctx.scheduler.list(JOB_SCHEDULE_PREFIX)).map((s) => [s.name, s]));
  const retries = await ctx.scheduler.list(RETRY_SCHEDULE_PREFIX);
  const jobs = await queryAll<JobItem>(ctx.store, trainingKeys.jobsPk, { index: 'gsi1' });
  const byId = new Map(jobs.map((j) => [j.jobId, j]));
  const now = ctx.now();

  for (const job of jobs) {
    await guarded(`schedule of ${job.jobId}`, async () => {
      const name = jobScheduleName(job.jobId);
      const have = schedules.get(name);
      let pending: JobItem | undefined = job.scheduleState === 'pending' ? job : undefined;
      const drifted = job.schedule ? !sameSchedule(have, jobScheduleSpec(job)) : have !== undefined;
      if (!pending && drifted) {
        // Marked pending first (if unchanged since read), so a concurrent PUT's newer schedule wins.
        const k = keys.job(job.jobId);
        pending = await updateIf<JobItem>(
          ctx.store,
          k.pk,
          k.sk,
          { set: { scheduleState: 'pending' } },
          { version: job.version },
        );
      }
      if (!pending) return;
      await syncJobSchedule(ctx, pending);
      report.schedulesSynced.push(job.jobId);
    });

    await guarded(`runs of ${job.jobId}`, async () => {
      if (
        job.requestedSlot &&
        (!job.currentSlot || job.requestedSlot > job.currentSlot) &&
        now - Date.parse(job.requestedSlot) > GRACE_MS
      ) {
        await fireJob(ctx, job.jobId, job.requestedSlot);
        report.firingsRequested.push(job.jobId);
      } else if (job.runActive) {
        await resumeJob(ctx, job, GRACE_MS, RESEND_AFTER_MS);
        report.runsResumed.push(job.jobId);
      }
    });
  }

  for (const [name] of schedules) {
    const jobId = name.slice(JOB_SCHEDULE_PREFIX.length);
    if (byId.has(jobId)) continue;
    await guarded(`orphan schedule ${name}`, async () => {
      // Read again: a job created after the read above has its schedule written after it.
      if (await ctx.store.get(keys.job(jobId).pk, keys.job(jobId).sk)) return;
      if (await ctx.scheduler.delete(name)) report.orphanSchedulesDeleted.push(name);
    });
  }

  for (const schedule of retries) {
    await guarded(`retry schedule ${schedule.name}`, async () => {
      const jobId = schedule.name.slice(RETRY_SCHEDULE_PREFIX.length);
      const job = byId.get(jobId);
      let wanted = false;
      try {
        const payload = JSON.parse(schedule.payload) as { run?: string };
        if (job && payload.run && job.currentRun === payload.run) {
          const { slot, attempt } = parseRunKey(payload.run);
          const run = await getRun(ctx, jobId, slot, attempt);
          wanted = run?.status === 'pending' && run.notBefore + GRACE_MS > now;
        }
      } catch {
        wanted = false;
      }
      if (!wanted && (await ctx.scheduler.delete(schedule.name)))
        report.retrySchedulesDeleted.push(schedule.name);
    });
  }

  // Runs holding capacity that no job is on (a start cancelled half-way).
  for (const run of await activeRuns(ctx)) {
    const job = byId.get(run.jobId);
    if (job && job.currentRun === runKey(run.slot, run.attempt)) continue;
    await guarded(`stray run ${run.instanceId}`, async () => {
      const fresh = await getRun(ctx, run.jobId, run.slot, run.attempt);
      if (!fresh || fresh.status !== 'running' || now - Date.parse(fresh.startedAt ?? '') < GRACE_MS) return;
      // Closed as failed (its job has moved on, so nothing follows) and its container removed.
      await endAttempt(ctx, fresh, { exitCode: null, logTail: '', reason: 'no job is on this run any more' });
      report.runsCancelled.push(run.instanceId);
    });
  }

  return report;
}
