import { releaseBurst } from './burst.js';
import type { AppContext } from '../core/context.js';
import { clearCheckpoint } from './checkpoints.js';
import { ConflictError, HttpError, NotFoundError, ValidationError } from '../core/errors.js';
import { emit } from '../core/events.js';
import { keys, trainingKeys } from '../core/keys.js';
import { claimName, releaseName, type NameClaim } from '../core/name-guard.js';
import { ConditionFailedError, queryAll, type StoreItem } from '../ports/store.js';
import { CronError, validateCron } from '../core/schedule-expressions.js';
import { getJob, jobRuns, newJobId, type JobItem, type RunItem } from './model.js';
import { jobScheduleName, retryScheduleName, trySyncJobSchedule } from './schedules.js';
import type { JobCreate, JobUpdate } from './schemas.js';
import { transitionJob } from './run-records.js';
import { JOB_STATUSES, type JobStatus } from './state.js';
import { launcherFor } from './launcher.js';
import { checkpointFolder } from './run-container.js';
import { trainingSettings } from './settings.js';

/** The API's side of jobs: create, change, delete, retry, list, count. */

interface NameGuard extends StoreItem {
  jobId: string;
  name: string;
}

/** FastAPI-style error with the documented `error_type` field. */
const notFound = (jobId: string) =>
  new NotFoundError(`Job ${jobId} not found`, 'NOT_FOUND', { error_type: 'JobNotFoundError' });
const running = (jobId: string, action: string) =>
  new ConflictError(`Cannot ${action} job ${jobId} while it is running`, 'CONFLICT', {
    error_type: 'JobRunningError',
  });
const duplicate = (name: string) =>
  new ConflictError(`A job named '${name}' already exists`, 'CONFLICT', {
    error_type: 'DuplicateJobNameError',
  });

const iso = (ms: number) => new Date(ms).toISOString();

export async function requireJob(ctx: AppContext, jobId: string): Promise<JobItem> {
  const job = await getJob(ctx, jobId);
  if (!job) throw notFound(jobId);
  return job;
}

/** Claims a job name (core/name-guard.ts): a live job of that name, or a create in flight, is a duplicate. */
function claimJobName(ctx: AppContext, name: string, jobId: string): Promise<NameClaim> {
  return claimName<NameGuard>(ctx, {
    key: keys.jobName(name),
    owner: { jobId, name },
    alive: async (held) => (await getJob(ctx, held.jobId))?.name === name,
    conflict: () => duplicate(name),
  });
}

const releaseJobName = (ctx: AppContext, name: string, jobId: string) =>
  releaseName(ctx, keys.jobName(name), { jobId });

export async function createJob(ctx: AppContext, input: JobCreate): Promise<JobItem> {
  const jobId = newJobId();
  // Its runs mount the job's checkpoint folder: refused up front where no node's owner allows it.
  const folder = checkpointFolder(trainingSettings(ctx).checkpointRoot, jobId);
  // A node with a checkpoint root of its own mounts the folder there (agent/checkpoints.ts).
  const mount = input.checkpoint_path ?? '/checkpoints';
  const refusal = await launcherFor(ctx).refusal?.({
    volumes: [{ hostPath: folder, containerPath: mount }],
    checkpoint: { jobId, containerPath: mount },
  });
  if (refusal) throw new HttpError(422, refusal, 'START_REFUSED', { error_type: 'StartRefusedError' });
  const claim = await claimJobName(ctx, input.name, jobId);
  const now = iso(ctx.now());
  const job: JobItem = {
    ...keys.job(jobId),
    ...keys.jobIndexes(now, jobId, 'pending'),
    jobId,
    name: input.name,
    image: input.image,
    command: input.command,
    schedule: input.schedule,
    timezone: input.timezone,
    maxRetries: input.max_retries,
    retryCount: 0,
    checkpointPath: input.checkpoint_path,
    resources: input.resources,
    env: input.env,
    status: 'pending',
    startedAt: null,
    completedAt: null,
    errorMessage: null,
    createdAt: now,
    updatedAt: now,
    scheduleState: input.schedule ? 'pending' : 'none',
    scheduleRev: 1,
    statusSeq: 1,
    runActive: false,
    skippedFirings: 0,
    ...(input.cloud ? { cloud: input.cloud } : {}),
    // No schedule: it runs once, now. Recorded first so the sweep fires it if the event is lost.
    ...(input.schedule ? {} : { requestedSlot: now }),
  };
  try {
    await ctx.store.put(job, { notExists: true });
  } catch (error) {
    await claim.release().catch(() => undefined);
    throw error;
  }
  if (!(await claim.bind())) {
    await ctx.store.delete(job.pk, job.sk);
    throw duplicate(input.name);
  }
  if (job.schedule) return trySyncJobSchedule(ctx, job);
  await requestFiring(ctx, jobId, now);
  return job;
}

async function requestFiring(ctx: AppContext, jobId: string, slot: string): Promise<void> {
  try {
    await emit(ctx, { type: 'job.fire', job_id: jobId, slot });
  } catch (error) {
    ctx.logger.warn('could not queue a job firing; the repair sweep will', { jobId, error: error as Error });
  }
}

function checkMergedSchedule(schedule: string | null, timezone: string): void {
  if (!schedule) return;
  try {
    validateCron(schedule, timezone);
  } catch (error) {
    if (!(error instanceof CronError)) throw error;
    throw new ValidationError([
      {
        loc: ['body', 'schedule'],
        msg: `Invalid cron schedule '${schedule}': ${error.message}`,
        type: 'value_error',
      },
    ]);
  }
}

export async function updateJob(ctx: AppContext, jobId: string, patch: JobUpdate): Promise<JobItem> {
  const job = await requireJob(ctx, jobId);
  if (job.status === 'running') throw running(jobId, 'update');
  const schedule = patch.schedule !== undefined ? patch.schedule : job.schedule;
  const timezone = patch.timezone ?? job.timezone;
  checkMergedSchedule(schedule, timezone);
  const scheduleChanged = schedule !== job.schedule || timezone !== job.timezone;
  const renamed = patch.name !== undefined && patch.name !== job.name;
  const claim = renamed ? await claimJobName(ctx, patch.name!, jobId) : undefined;

  const set: Partial<JobItem> = {
    ...(patch.name !== undefined ? { name: patch.name } : {}),
    ...(patch.image !== undefined ? { image: patch.image } : {}),
    ...(patch.command !== undefined ? { command: patch.command } : {}),
    ...(patch.max_retries !== undefined ? { maxRetries: patch.max_retries } : {}),
    ...(patch.checkpoint_path !== undefined ? { checkpointPath: patch.checkpoint_path } : {}),
    ...(patch.resources !== undefined ? { resources: patch.resources } : {}),
    ...(patch.env !== undefined ? { env: patch.env } : {}),
    ...(scheduleChanged ? { schedule, timezone, scheduleState: 'pending' as const } : {}),
    updatedAt: iso(ctx.now()),
  };
  const k = keys.job(jobId);
  let updated: JobItem;
  try {
    updated = await ctx.store.update<JobItem>(
      k.pk,
      k.sk,
      { set, ...(scheduleChanged ? { add: { scheduleRev: 1 } } : {}) },
      // Unchanged since read: in particular not started meanwhile.
      { version: job.version },
    );
  } catch (error) {
    await claim?.release().catch(() => undefined);
    if (!(error instanceof ConditionFailedError)) throw error;
    const now = await getJob(ctx, jobId);
    if (!now) throw notFound(jobId);
    if (now.status === 'running') throw running(jobId, 'update');
    throw new ConflictError(`Job ${jobId} changed while it was being updated; try again`, 'CONFLICT', {
      error_type: 'ConcurrentUpdateError',
    });
  }
  if (claim && !(await claim.bind())) {
    // The new name was taken over meanwhile (a claim past its lease): the job keeps its old name.
    await ctx.store
      .update(k.pk, k.sk, { set: { name: job.name } }, { equals: { name: patch.name } })
      .catch(() => undefined);
    throw duplicate(patch.name!);
  }
  if (renamed) await releaseJobName(ctx, job.name, jobId).catch(() => undefined);
  if (scheduleChanged) updated = await trySyncJobSchedule(ctx, updated);
  return updated;
}

export async function deleteJob(ctx: AppContext, jobId: string): Promise<void> {
  const job = await requireJob(ctx, jobId);
  if (job.status === 'running') throw running(jobId, 'delete');
  const k = keys.job(jobId);
  try {
    await ctx.store.delete(k.pk, k.sk, { equals: { status: JOB_STATUSES.filter((s) => s !== 'running') } });
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
    if (!error.current) throw notFound(jobId);
    throw running(jobId, 'delete');
  }
  // The job is gone first: what follows may fail and is then cleaned by the repair sweep.
  try {
    await ctx.scheduler.delete(jobScheduleName(jobId));
    await ctx.scheduler.delete(retryScheduleName(jobId));
  } catch (error) {
    ctx.logger.warn('job schedule delete failed; the repair sweep will remove it', {
      jobId,
      error: error as Error,
    });
  }
  await releaseJobName(ctx, job.name, jobId).catch(() => undefined);
  // A rented instance waiting for this job goes back with it.
  await releaseBurst(ctx, job).catch((error: unknown) =>
    ctx.logger.warn('could not give back the job’s rented instance', { jobId, error: error as Error }),
  );
  for (const run of await jobRuns(ctx, jobId)) await ctx.store.delete(run.pk, run.sk).catch(() => undefined);
  // Its checkpoint goes with it.
  await clearCheckpoint(ctx, jobId).catch((error: unknown) =>
    ctx.logger.warn('checkpoint delete failed', { jobId, error: error as Error }),
  );
}

/** POST /retry: a failed job starts over, retry count reset, running now. */
export async function retryJob(ctx: AppContext, jobId: string): Promise<JobItem> {
  const job = await requireJob(ctx, jobId);
  if (job.status !== 'failed') {
    throw new ConflictError(`Only failed jobs can be retried; job ${jobId} is ${job.status}`, 'CONFLICT', {
      error_type: 'InvalidJobStateError',
    });
  }
  const slot = iso(ctx.now());
  const reset = await transitionJob(
    ctx,
    job,
    'pending',
    { set: { retryCount: 0, errorMessage: null, completedAt: null, requestedSlot: slot } },
    { version: job.version },
  );
  if (!reset) {
    throw new ConflictError(`Job ${jobId} changed while it was being retried; try again`, 'CONFLICT', {
      error_type: 'ConcurrentUpdateError',
    });
  }
  await requestFiring(ctx, jobId, slot);
  return reset;
}

export interface Paged<T> {
  items: T[];
  total: number;
}

/** Newest first; `total` counts every match. */
export async function listJobs(
  ctx: AppContext,
  options: { status?: JobStatus; page: number; pageSize: number },
): Promise<Paged<JobItem>> {
  const all = options.status
    ? await queryAll<JobItem>(ctx.store, trainingKeys.jobStatusPk(options.status), {
        index: 'gsi2',
        ascending: false,
      })
    : await queryAll<JobItem>(ctx.store, trainingKeys.jobsPk, { index: 'gsi1', ascending: false });
  const start = (options.page - 1) * options.pageSize;
  return { items: all.slice(start, start + options.pageSize), total: all.length };
}

export async function listRuns(
  ctx: AppContext,
  jobId: string,
  options: { page: number; pageSize: number },
): Promise<Paged<RunItem>> {
  await requireJob(ctx, jobId);
  const all = (await jobRuns(ctx, jobId)).reverse();
  const start = (options.page - 1) * options.pageSize;
  return { items: all.slice(start, start + options.pageSize), total: all.length };
}

/** Counts per status from the status index, page by page: no counters to drift. */
export async function jobStats(ctx: AppContext): Promise<Record<JobStatus, number> & { total_jobs: number }> {
  const counts = await Promise.all(
    JOB_STATUSES.map(async (status) => {
      let n = 0;
      let cursor: string | undefined;
      do {
        const page = await ctx.store.query(trainingKeys.jobStatusPk(status), { index: 'gsi2', cursor });
        n += page.items.length;
        cursor = page.cursor;
      } while (cursor);
      return [status, n] as const;
    }),
  );
  const byStatus = Object.fromEntries(counts) as Record<JobStatus, number>;
  return { total_jobs: counts.reduce((sum, [, n]) => sum + n, 0), ...byStatus };
}
