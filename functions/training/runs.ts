import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { trainingKeys } from '../core/keys.js';
import { updateIf } from '../ports/store.js';
import { latestFiring } from '../core/schedule-expressions.js';
import { launcherFor } from './launcher.js';
import { getJob, getRun, parseRunKey, runItemKey, runKey, type JobItem, type RunItem } from './model.js';
import { containerSpec, startCommandId } from './run-container.js';
import { ensureRunItem, finishRun, iso, recordSkip, reservation, transitionJob } from './run-records.js';
import { jobScheduleName, retryScheduleName } from './schedules.js';
import { trainingSettings } from './settings.js';
import { getNode } from '../nodes/nodes.js';
import { burst, releaseBurst } from './burst.js';
import { decideAfterAttempt, type AttemptOutcome } from './state.js';

/**
 * The run lifecycle: firing → run record → node → container.start → exit → next attempt or end.
 *
 * No transactions: every step is one conditional write, and every step can run again. A firing
 * is keyed by its scheduled time (`slot`) and a run by slot and attempt number, so a duplicated
 * `job.fire`, `job.launch` or `container.exited` finds its work done, or half done and finishes
 * it, and never starts a second run or a second retry.
 */

/** SQS delays stop at 15 minutes; later launches go through a one-time schedule. */
export const MAX_QUEUE_DELAY_SECONDS = 900;
/** How late a scheduled firing may be handled and still count as that firing. */
const FIRING_LOOKBACK_MS = 60 * 60_000;

/** The firing a schedule delivery stands for: the latest cron time at or just before now. */
export function firingSlot(job: JobItem, now: number): string | undefined {
  if (!job.schedule) return undefined;
  const latest = latestFiring(job.schedule, job.timezone, new Date(now));
  if (!latest || now - latest.getTime() > FIRING_LOOKBACK_MS) return undefined;
  return latest.toISOString();
}

/**
 * Handles one firing: a schedule delivery (slot derived from the cron) or an explicit one
 * (creation of an unscheduled job, POST /retry).
 */
export async function fireJob(ctx: AppContext, jobId: string, explicitSlot?: string): Promise<void> {
  for (let tries = 0; tries < 5; tries++) {
    const job = await getJob(ctx, jobId);
    if (!job) {
      // A schedule that outlived its job (deleted between the two writes): remove it.
      if (!explicitSlot) await ctx.scheduler.delete(jobScheduleName(jobId));
      return;
    }
    const slot = explicitSlot ?? firingSlot(job, ctx.now());
    if (!slot) {
      ctx.logger.warn('job firing matches no recent schedule time; ignored', { jobId });
      return;
    }
    if (job.currentSlot && job.currentSlot >= slot) {
      // The same firing again (or an older one late): finish what the first delivery started.
      if (job.currentSlot === slot) await resumeJob(ctx, job);
      return;
    }
    if (job.runActive) return recordSkip(ctx, job, slot);
    const key = runKey(slot, 1);
    const claimed = await transitionJob(
      ctx,
      job,
      'pending',
      {
        set: {
          currentSlot: slot,
          currentRun: key,
          runActive: true,
          retryCount: 0,
          errorMessage: null,
          completedAt: null,
        },
        ...(job.requestedSlot && job.requestedSlot <= slot ? { remove: ['requestedSlot'] } : {}),
      },
      { version: job.version },
    );
    if (!claimed) continue; // changed under us: look again
    await ensureRunItem(ctx, claimed, slot, 1, ctx.now());
    await launchRun(ctx, jobId, key);
    return;
  }
  throw new Error(`job ${jobId}: firing kept conflicting`);
}

/** Queues a launch now or later: an SQS delay up to 15 minutes, a one-time schedule beyond. */
export async function scheduleLaunch(
  ctx: AppContext,
  jobId: string,
  key: string,
  delaySeconds: number,
): Promise<void> {
  const event = { type: 'job.launch' as const, job_id: jobId, run: key };
  if (delaySeconds <= MAX_QUEUE_DELAY_SECONDS) {
    await emit(ctx, event, delaySeconds > 0 ? Math.ceil(delaySeconds) : undefined);
    return;
  }
  const at = new Date(Math.ceil((ctx.now() + delaySeconds * 1000) / 1000) * 1000);
  await ctx.scheduler.upsert({
    name: retryScheduleName(jobId),
    expression: `at(${at.toISOString().slice(0, 19)})`,
    timezone: 'UTC',
    payload: JSON.stringify({ ...event, via: 'schedule' }),
    description: `Retry of training job ${jobId}`,
  });
}

export type LaunchOutcome = 'started' | 'waiting' | 'early' | 'stale';

/**
 * Starts the run the job is on, if it is still pending: a node, the run claimed for it
 * (pending → running), the job marked running, then container.start. Safe to call again at
 * any point; the run's conditional claim lets one caller through.
 */
export async function launchRun(ctx: AppContext, jobId: string, key: string): Promise<LaunchOutcome> {
  const job = await getJob(ctx, jobId);
  if (!job || job.currentRun !== key || !job.runActive) return 'stale';
  const { slot, attempt } = parseRunKey(key);
  let run = await getRun(ctx, jobId, slot, attempt);
  if (!run) {
    await ensureRunItem(ctx, job, slot, attempt, ctx.now());
    run = (await getRun(ctx, jobId, slot, attempt))!;
  }
  if (run.status === 'running') {
    await markStarted(ctx, job, run);
    return 'started';
  }
  if (run.status !== 'pending') {
    await settleJob(ctx, run);
    return 'stale';
  }
  const now = ctx.now();
  if (run.notBefore > now + 1000) {
    await scheduleLaunch(ctx, jobId, key, (run.notBefore - now) / 1000);
    return 'early';
  }
  const settings = trainingSettings(ctx);
  const launcher = launcherFor(ctx);
  // `cloud.always`: only the job's own rented node takes it.
  const placement = await launcher.choose(run.reserve ?? reservation(job), run.avoid ?? [], {
    command: job.command,
    spec: containerSpec(job, run, settings),
    ...(job.cloud?.always ? { onlyNodeName: job.burstInstanceId ?? '' } : {}),
  });
  const k = runItemKey(jobId, slot, attempt);
  if ('reason' in placement) {
    const waiting = job.cloud ? await burst(ctx, job, run, placement.reason) : placement.reason;
    await updateIf(
      ctx.store,
      k.pk,
      k.sk,
      { set: { waiting, checkedAt: now } },
      { equals: { status: 'pending' } },
    );
    await scheduleLaunch(ctx, jobId, key, settings.placementRetrySeconds);
    return 'waiting';
  }
  const claimed = await updateIf<RunItem>(
    ctx.store,
    k.pk,
    k.sk,
    {
      set: {
        status: 'running',
        nodeId: placement.nodeId,
        startedAt: iso(now),
        ...trainingKeys.activeRunIndex(placement.nodeId, run.instanceId),
        ...trainingKeys.nodeRunIndex(placement.nodeId, iso(now), run.instanceId),
      },
      remove: ['waiting'],
    },
    { equals: { status: 'pending' } },
  );
  if (!claimed) return 'stale'; // another launcher won
  await markStarted(ctx, job, claimed);
  return 'started';
}

/** A claimed run: the job goes running (or the run is cancelled if the job moved on), then the container starts. */
async function markStarted(
  ctx: AppContext,
  job: JobItem,
  run: RunItem,
  resendPendingOlderThanMs?: number,
): Promise<void> {
  const key = runKey(run.slot, run.attempt);
  let current: JobItem | undefined = job;
  if (job.status === 'pending' || job.status === 'retrying') {
    current = await transitionJob(
      ctx,
      job,
      'running',
      { set: { startedAt: run.startedAt ?? iso(ctx.now()), completedAt: null } },
      { equals: { currentRun: key, runActive: true } },
    );
    if (!current) current = await getJob(ctx, job.jobId);
  }
  if (!current || current.currentRun !== key || current.status !== 'running') {
    // Deleted or reset while we placed it: the container must not start.
    await finishRun(ctx, run, 'cancelled', {
      exitCode: null,
      logTail: '',
      reason: 'job changed before the run started',
    });
    return;
  }
  await launcherFor(ctx).start(
    run.nodeId!,
    containerSpec(current, run, trainingSettings(ctx)),
    startCommandId(run),
    resendPendingOlderThanMs,
  );
}

/**
 * An attempt ended (exit reported, start refused, node lost). The run is closed first, the job
 * follows; a repeat finds the run closed and only completes the job's side if that was missed.
 */
export async function endAttempt(ctx: AppContext, run: RunItem, outcome: AttemptOutcome): Promise<void> {
  const closed = await finishRun(ctx, run, outcome.exitCode === 0 ? 'succeeded' : 'failed', outcome);
  const final = closed ?? (await getRun(ctx, run.jobId, run.slot, run.attempt));
  if (!final || final.status === 'running' || final.status === 'pending') return;
  await settleJob(ctx, final);
  if (closed && run.nodeId) {
    // The exited container has told what it had to; remove it (queued while the node is away).
    await launcherFor(ctx)
      .remove(run.nodeId, run.instanceId)
      .catch((error: unknown) =>
        ctx.logger.warn('could not queue removal of a run container', {
          instanceId: run.instanceId,
          error: error as Error,
        }),
      );
  }
}

/** Moves the job on from a closed run it is still on: completed, failed, or retrying with the next attempt queued. */
export async function settleJob(ctx: AppContext, run: RunItem): Promise<void> {
  if (run.status === 'cancelled') return;
  const job = await getJob(ctx, run.jobId);
  const key = runKey(run.slot, run.attempt);
  if (!job || job.currentRun !== key || job.status !== 'running') return;
  const settings = trainingSettings(ctx);
  const outcome: AttemptOutcome = {
    exitCode: run.exitCode ?? null,
    logTail: run.logTail ?? '',
    ...(run.error ? { reason: run.error } : {}),
    ...(run.preempted ? { preempted: true } : {}),
  };
  const decision = decideAfterAttempt(job, run.attempt, outcome, settings.retry);
  const on = { equals: { currentRun: key } };
  const now = ctx.now();
  switch (decision.kind) {
    case 'complete':
      await transitionJob(
        ctx,
        job,
        'completed',
        { set: { completedAt: iso(now), errorMessage: null, runActive: false } },
        on,
      );
      await releaseBurst(ctx, job);
      return;
    case 'fail':
      await transitionJob(
        ctx,
        job,
        'failed',
        { set: { completedAt: iso(now), errorMessage: decision.errorMessage, runActive: false } },
        on,
      );
      await releaseBurst(ctx, job);
      return;
    case 'retry': {
      const next = runKey(run.slot, decision.attempt);
      const moved = await transitionJob(
        ctx,
        job,
        'retrying',
        {
          set: {
            retryCount: decision.retryCount,
            currentRun: next,
            errorMessage: decision.errorMessage,
            ...(decision.preempted ? { preemptionCount: (job.preemptionCount ?? 0) + 1 } : {}),
          },
        },
        on,
      );
      if (!moved) return;
      // The node that failed it goes last in line for the next attempt.
      const avoid = run.nodeId ? [run.nodeId] : [];
      await ensureRunItem(ctx, moved, run.slot, decision.attempt, now + decision.delaySeconds * 1000, avoid);
      await scheduleLaunch(ctx, job.jobId, next, decision.delaySeconds);
      return;
    }
  }
}

/**
 * Brings a job's current run forward from wherever it stopped (a duplicate delivery, the repair
 * sweep). `graceMs`: a pending run is only launched once its start time is this far past, so the
 * sweep does not race the delayed launch already queued for it.
 */
export async function resumeJob(
  ctx: AppContext,
  job: JobItem,
  graceMs = 0,
  resendPendingOlderThanMs?: number,
): Promise<void> {
  if (!job.runActive || !job.currentRun) return;
  const { slot, attempt } = parseRunKey(job.currentRun);
  const run = await getRun(ctx, job.jobId, slot, attempt);
  if (!run) {
    await launchRun(ctx, job.jobId, job.currentRun);
    return;
  }
  if (run.status === 'pending') {
    // A run waiting for a node re-queues its own launch: leave that chain alone while it is alive.
    const now = ctx.now();
    const waitingChain =
      run.checkedAt !== undefined &&
      now - run.checkedAt < trainingSettings(ctx).placementRetrySeconds * 1000 + graceMs;
    if (!waitingChain && run.notBefore + graceMs <= now) await launchRun(ctx, job.jobId, job.currentRun);
    return;
  }
  if (run.status === 'running') {
    const launcher = launcherFor(ctx);
    if (run.nodeId && !(await launcher.alive(run.nodeId))) {
      await endAttempt(ctx, run, await nodeLostOutcome(ctx, run.nodeId));
      return;
    }
    if (run.nodeId && (await launcher.gone?.(run.nodeId, run.instanceId, startCommandId(run)))) {
      // No exit will be reported for a container that no longer exists: count it as a failed attempt.
      await endAttempt(ctx, run, {
        exitCode: null,
        logTail: '',
        reason: `the run's container is gone from node ${run.nodeId} (removed outside the control plane)`,
      });
      return;
    }
    await markStarted(ctx, job, run, resendPendingOlderThanMs);
    return;
  }
  await settleJob(ctx, run);
}

/** A run's node stopped answering: a rented node (a cloud instance) going away is a preemption. */
export async function nodeLostOutcome(ctx: AppContext, nodeId: string): Promise<AttemptOutcome> {
  const node = await getNode(ctx, nodeId);
  return node?.cloud
    ? {
        exitCode: null,
        logTail: '',
        reason: `rented node ${nodeId} (instance ${node.cloud.instanceId}) went offline during the run`,
        preempted: true,
      }
    : { exitCode: null, logTail: '', reason: `node ${nodeId} went offline during the run` };
}
