import type { AppContext } from '../core/context.js';
import { keys } from '../core/keys.js';
import { burstLost, rentBurstInstance } from '../novita/burst.js';
import { terminateInstance } from '../novita/join.js';
import { getInstanceItem } from '../novita/model.js';
import { updateIf } from '../ports/store.js';
import type { JobItem, RunItem } from './model.js';

/**
 * Burst: a job with `cloud` rents a Novita instance that joins the fleet (join_fleet, process
 * driver) when no fleet node has room for its run (or always, with `cloud.always`); the run is
 * placed on it like on any node, and the instance is terminated when the job ends or its node is
 * lost. Caps and the rent itself: functions/novita/burst.ts (shared with model bursts).
 * Returns what the run waits for, as its waiting reason.
 */
export async function burst(
  ctx: AppContext,
  job: JobItem,
  run: RunItem,
  fleetReason: string,
): Promise<string> {
  const cloud = job.cloud!;
  if (!ctx.config.CLOUD_BURST_TEMPLATE_ID)
    return `${fleetReason}; no burst: CLOUD_BURST_TEMPLATE_ID is not set`;

  if (job.burstInstanceId) {
    const current = await getInstanceItem(ctx, job.burstInstanceId);
    if (current && !(await burstLost(ctx, current))) {
      return current.nodeId
        ? `waiting for rented node ${current.nodeName} (instance ${current.instanceId}) to take the run`
        : `bursting: rented instance ${current.instanceId} (${current.productName}, ${current.price} per hour${current.billingMode === 'spot' ? ', spot' : ''}) is ${current.status} and joins the fleet`;
    }
    if (current) await terminateInstance(ctx, current, 'its node was lost');
  }

  const outcome = await rentBurstInstance(
    ctx,
    {
      cloud,
      name: `burst-${job.jobId}-a${run.attempt}`,
      gpus: run.reserve?.gpus ?? 1,
      labels: { 'fleet.burst-job': job.jobId },
      burstFor: job.jobId,
    },
    fleetReason,
  );
  if ('refused' in outcome) return outcome.refused;
  const { instanceId } = outcome;
  const k = keys.job(job.jobId);
  const recorded = await updateIf(
    ctx.store,
    k.pk,
    k.sk,
    { set: { burstInstanceId: instanceId } },
    job.burstInstanceId
      ? { equals: { burstInstanceId: job.burstInstanceId } }
      : { absent: ['burstInstanceId'] },
  );
  if (!recorded) {
    // Another launch rented one first: this one goes back.
    const extra = await getInstanceItem(ctx, instanceId);
    if (extra) await terminateInstance(ctx, extra, 'rented twice for one run');
    return 'bursting: a rented instance is joining the fleet';
  }
  ctx.logger.info('burst: rented an instance for a training run', { jobId: job.jobId, instanceId });
  return `bursting: rented instance ${instanceId} (${cloud.product}) is creating and joins the fleet`;
}

/** The job is over: its rented instance goes back. */
export async function releaseBurst(
  ctx: AppContext,
  job: Pick<JobItem, 'jobId' | 'burstInstanceId'>,
): Promise<void> {
  if (!job.burstInstanceId) return;
  const item = await getInstanceItem(ctx, job.burstInstanceId);
  if (item && !item.terminatedAt) await terminateInstance(ctx, item, `job ${job.jobId} ended`);
}
