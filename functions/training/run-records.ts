import type { AppContext } from '../core/context.js';
import { keys, trainingKeys } from '../core/keys.js';
import { toReservation } from '../orchestrator/resources.js';
import { putIfAbsent, updateIf, type Condition, type UpdateSpec } from '../ports/store.js';
import type { RunAsk } from '../ports/run-launcher.js';
import { instanceIdOf, runItemKey, skipItemKey, type JobItem, type RunItem } from './model.js';
import { notifyStatus } from './notify.js';
import { canTransition, lastLines, type AttemptOutcome, type JobStatus } from './state.js';

/** The run lifecycle's conditional writes: a job's status, a run's record, a skipped firing. Each may run again. */

/** Log lines kept on a run. */
const RUN_LOG_LINES = 50;

export const iso = (ms: number) => new Date(ms).toISOString();

/**
 * One conditional status change of a job, with its status index and notification. The stored
 * status must still be `job.status`, plus whatever `condition` adds. Undefined when it lost.
 */
export async function transitionJob(
  ctx: AppContext,
  job: JobItem,
  to: JobStatus,
  spec: UpdateSpec = {},
  condition: Condition = {},
): Promise<JobItem | undefined> {
  const changed = job.status !== to;
  if (changed && !canTransition(job.status, to))
    throw new Error(`job ${job.jobId}: ${job.status} → ${to} is not a transition`);
  const k = keys.job(job.jobId);
  const updated = await updateIf<JobItem>(
    ctx.store,
    k.pk,
    k.sk,
    {
      set: {
        ...spec.set,
        status: to,
        updatedAt: iso(ctx.now()),
        ...(changed ? keys.jobIndexes(job.createdAt, job.jobId, to) : {}),
      },
      ...(spec.remove ? { remove: spec.remove } : {}),
      add: { ...spec.add, ...(changed ? { statusSeq: 1 } : {}) },
    },
    { ...condition, equals: { ...condition.equals, status: job.status } },
  );
  if (!updated) return undefined;
  await notifyStatus(ctx, job.status, updated);
  return updated;
}

export function reservation(job: JobItem): RunAsk {
  const r = toReservation(job.resources);
  return { gpus: r.gpus, cpu: r.cpu, memoryMb: r.memoryMb, diskGb: r.diskGb };
}

export async function ensureRunItem(
  ctx: AppContext,
  job: JobItem,
  slot: string,
  attempt: number,
  notBefore: number,
  avoid: string[] = [],
): Promise<void> {
  const item: RunItem = {
    ...runItemKey(job.jobId, slot, attempt),
    jobId: job.jobId,
    slot,
    attempt,
    instanceId: instanceIdOf(job.jobId, slot, attempt),
    status: 'pending',
    notBefore,
    reserve: reservation(job),
    ...(avoid.length ? { avoid } : {}),
    createdAt: iso(ctx.now()),
  };
  await putIfAbsent(ctx.store, item);
}

/** A firing while the previous run still goes: recorded once, as a skipped run. */
export async function recordSkip(ctx: AppContext, job: JobItem, slot: string): Promise<void> {
  const recorded = await putIfAbsent(ctx.store, {
    ...skipItemKey(job.jobId, slot),
    jobId: job.jobId,
    slot,
    attempt: 0,
    instanceId: '',
    status: 'skipped',
    notBefore: 0,
    error: `previous run ${job.currentRun ?? ''} still active`,
    createdAt: iso(ctx.now()),
  } satisfies RunItem);
  if (!recorded) return; // this firing was recorded already
  const k = keys.job(job.jobId);
  await updateIf(ctx.store, k.pk, k.sk, { add: { skippedFirings: 1 } });
  ctx.logger.info('job firing skipped: previous run still active', { jobId: job.jobId, slot });
}

/** running → final, off the active index. Returns the run as stored after, or undefined if it was not running there. */
export async function finishRun(
  ctx: AppContext,
  run: RunItem,
  status: 'succeeded' | 'failed' | 'cancelled',
  outcome: AttemptOutcome,
): Promise<RunItem | undefined> {
  const k = runItemKey(run.jobId, run.slot, run.attempt);
  // Bounded: items stop at 400 KB, and the tail is for people, not archives.
  const logTail = lastLines(outcome.logTail, RUN_LOG_LINES).slice(-16_384);
  return updateIf<RunItem>(
    ctx.store,
    k.pk,
    k.sk,
    {
      set: {
        status,
        endedAt: iso(ctx.now()),
        exitCode: outcome.exitCode,
        logTail,
        ...(outcome.reason ? { error: outcome.reason } : {}),
        ...(outcome.preempted ? { preempted: true } : {}),
        // A run placed before the node-run index existed joins it as it ends.
        ...(run.nodeId && run.startedAt
          ? trainingKeys.nodeRunIndex(run.nodeId, run.startedAt, run.instanceId)
          : {}),
      },
      remove: ['gsi1pk', 'gsi1sk'],
    },
    { equals: { status: 'running', nodeId: run.nodeId } },
  );
}
