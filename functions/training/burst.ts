import type { AppContext } from '../core/context.js';
import { HttpError } from '../core/errors.js';
import { keys, novitaKeys } from '../core/keys.js';
import { getNode, isOnline, isCordoned } from '../nodes/nodes.js';
import { createInstance } from '../novita/instances.js';
import { terminateInstance } from '../novita/join.js';
import { getInstanceItem, type NovitaInstanceItem } from '../novita/model.js';
import { ConditionFailedError, queryAll } from '../ports/store.js';
import type { JobItem, RunItem } from './model.js';

/**
 * Burst: a job with `cloud` rents a Novita instance that joins the fleet (join_fleet, process
 * driver) when no fleet node has room for its run (or always, with `cloud.always`); the run is
 * placed on it like on any node, and the instance is terminated when the job ends or its node is
 * lost. Caps (settings): CLOUD_BURST_MAX_INSTANCES at a time, CLOUD_BURST_MAX_SPEND_PER_DAY per UTC
 * day (each instance counts at least one hour, at its price; a new one at max_price_per_hour).
 * Returns what the run waits for, as its waiting reason.
 */
export async function burst(
  ctx: AppContext,
  job: JobItem,
  run: RunItem,
  fleetReason: string,
): Promise<string> {
  const cloud = job.cloud!;
  const templateId = ctx.config.CLOUD_BURST_TEMPLATE_ID;
  if (!templateId) return `${fleetReason}; no burst: CLOUD_BURST_TEMPLATE_ID is not set`;

  if (job.burstInstanceId) {
    const current = await getInstanceItem(ctx, job.burstInstanceId);
    if (current && !(await lost(ctx, current))) {
      return current.nodeId
        ? `waiting for rented node ${current.nodeName} (instance ${current.instanceId}) to take the run`
        : `bursting: rented instance ${current.instanceId} (${current.productName}, ${current.price} per hour${current.billingMode === 'spot' ? ', spot' : ''}) is ${current.status} and joins the fleet`;
    }
    if (current) await terminateInstance(ctx, current, 'its node was lost');
  }

  const rented = (await burstInstances(ctx)).filter((i) => !i.terminatedAt && i.status !== 'failed');
  const maxInstances = ctx.config.CLOUD_BURST_MAX_INSTANCES;
  if (rented.length >= maxInstances) {
    return `${fleetReason}; burst refused: ${rented.length} rented instance${rented.length === 1 ? '' : 's'} already, the most CLOUD_BURST_MAX_INSTANCES (${maxInstances}) allows`;
  }
  const spent = await spendToday(ctx);
  const cap = ctx.config.CLOUD_BURST_MAX_SPEND_PER_DAY;
  if (spent + cloud.max_price_per_hour > cap) {
    return `${fleetReason}; burst refused: today's burst spend ${round(spent)} plus up to ${cloud.max_price_per_hour} for an hour would pass CLOUD_BURST_MAX_SPEND_PER_DAY (${cap})`;
  }

  let instanceId: string;
  try {
    ({ instanceId } = await createInstance(
      ctx,
      {
        name: `burst-${job.jobId}-a${run.attempt}`,
        productName: cloud.product,
        templateId,
        gpuNum: Math.max(1, run.reserve?.gpus ?? 1),
        rootfsSize: 60,
        region: cloud.region,
        join_fleet: true,
        spot: cloud.spot,
        labels: { 'fleet.burst-job': job.jobId },
      },
      { burstFor: job.jobId, maxPricePerHour: cloud.max_price_per_hour },
    ));
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return `${fleetReason}; burst failed: ${error.message}`;
  }
  const k = keys.job(job.jobId);
  try {
    await ctx.store.update(
      k.pk,
      k.sk,
      { set: { burstInstanceId: instanceId } },
      job.burstInstanceId
        ? { equals: { burstInstanceId: job.burstInstanceId } }
        : { absent: ['burstInstanceId'] },
    );
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
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

/** The instance cannot take the run any more: failed, gone, reclaimed, or its node lost or cordoned. */
async function lost(ctx: AppContext, item: NovitaInstanceItem): Promise<boolean> {
  if (item.terminatedAt || item.reclaimedAt) return true;
  if (item.status === 'failed' || item.status === 'exited' || item.status === 'stopped') return true;
  if (!item.nodeId) return false;
  const node = await getNode(ctx, item.nodeId);
  return !node || !isOnline(node, ctx) || isCordoned(node);
}

async function burstInstances(ctx: AppContext): Promise<NovitaInstanceItem[]> {
  const all = await queryAll<NovitaInstanceItem>(ctx.store, novitaKeys.instancesPk, { index: 'gsi1' });
  return all.filter((i) => i.burstFor !== undefined);
}

const HOUR_MS = 3_600_000;
const round = (n: number) => Math.round(n * 100) / 100;

/** Today's (UTC) burst spend: each instance's hours today at its price, at least one hour each. */
export async function spendToday(ctx: AppContext): Promise<number> {
  const now = ctx.now();
  const dayStart = Math.floor(now / 86_400_000) * 86_400_000;
  let total = 0;
  for (const i of await burstInstances(ctx)) {
    const end = i.terminatedAt ? Date.parse(i.terminatedAt) : now;
    if (end < dayStart) continue;
    const from = Math.max(Date.parse(i.createdAt), dayStart);
    total += i.price * Math.max(1, (end - from) / HOUR_MS);
  }
  return total;
}
