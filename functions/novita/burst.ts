import type { AppContext } from '../core/context.js';
import { HttpError } from '../core/errors.js';
import { getNode, isCordoned, isOnline } from '../nodes/nodes.js';
import { endedBurstsToday, liveBurstInstances } from './burst-index.js';
import { createInstance } from './instances.js';
import type { NovitaInstanceItem } from './model.js';

/**
 * What training bursts and model bursts share: the caps (CLOUD_BURST_MAX_INSTANCES at a time,
 * CLOUD_BURST_MAX_SPEND_PER_DAY per UTC day), the rent itself (a join_fleet instance, process
 * driver) and when a rented instance can no longer take work.
 */

export interface BurstCloud {
  product: string;
  region: string;
  max_price_per_hour: number;
  spot: boolean;
}

export interface RentInput {
  cloud: BurstCloud;
  name: string;
  gpus: number;
  labels: Record<string, string>;
  /** What it is rented for: a training job, or a model's queue. */
  burstFor?: string;
  burstModel?: string;
}

/** An instance id, or why none was rented (appended to the fleet's own reason). */
export type RentOutcome = { instanceId: string } | { refused: string };

export async function rentBurstInstance(
  ctx: AppContext,
  input: RentInput,
  fleetReason: string,
): Promise<RentOutcome> {
  const refused = await burstRefusal(ctx, input.cloud, fleetReason, input.gpus);
  if (refused) return { refused };
  return rentNow(ctx, input, fleetReason);
}

/** Why a burst may not rent now (no template, a cap reached), or null. */
export async function burstRefusal(
  ctx: AppContext,
  cloud: BurstCloud,
  fleetReason: string,
  gpus = 1,
): Promise<string | null> {
  if (!ctx.config.CLOUD_BURST_TEMPLATE_ID)
    return `${fleetReason}; no burst: CLOUD_BURST_TEMPLATE_ID is not set`;
  const live = await liveBurstInstances(ctx);
  const rented = live.filter((i) => i.status !== 'failed');
  const maxInstances = ctx.config.CLOUD_BURST_MAX_INSTANCES;
  if (rented.length >= maxInstances)
    return `${fleetReason}; burst refused: ${rented.length} rented instance${rented.length === 1 ? '' : 's'} already, the most CLOUD_BURST_MAX_INSTANCES (${maxInstances}) allows`;
  const spent = await spendToday(ctx, live);
  const cap = ctx.config.CLOUD_BURST_MAX_SPEND_PER_DAY;
  // Prices are per GPU hour (Novita bills each card).
  const nextHour = cloud.max_price_per_hour * Math.max(1, gpus);
  if (spent + nextHour > cap)
    return `${fleetReason}; burst refused: today's burst spend ${round(spent)} plus up to ${round(nextHour)} for an hour would pass CLOUD_BURST_MAX_SPEND_PER_DAY (${cap})`;
  return null;
}

/** Rents without checking the caps (burstRefusal said yes). */
export async function rentNow(ctx: AppContext, input: RentInput, fleetReason: string): Promise<RentOutcome> {
  const templateId = ctx.config.CLOUD_BURST_TEMPLATE_ID!;
  try {
    const { instanceId } = await createInstance(
      ctx,
      {
        name: input.name,
        productName: input.cloud.product,
        templateId,
        gpuNum: Math.max(1, input.gpus),
        rootfsSize: 60,
        region: input.cloud.region,
        join_fleet: true,
        spot: input.cloud.spot,
        labels: input.labels,
      },
      {
        ...(input.burstFor ? { burstFor: input.burstFor } : {}),
        ...(input.burstModel ? { burstModel: input.burstModel } : {}),
        maxPricePerHour: input.cloud.max_price_per_hour,
      },
    );
    return { instanceId };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { refused: `${fleetReason}; burst failed: ${error.message}` };
  }
}

/** The instance cannot take work any more: failed, gone, reclaimed, or its node lost or cordoned. */
export async function burstLost(ctx: AppContext, item: NovitaInstanceItem): Promise<boolean> {
  if (item.terminatedAt || item.reclaimedAt) return true;
  if (item.status === 'failed' || item.status === 'exited' || item.status === 'stopped') return true;
  if (!item.nodeId) return false;
  const node = await getNode(ctx, item.nodeId);
  return !node || !isOnline(node, ctx) || isCordoned(node);
}

const HOUR_MS = 3_600_000;
const round = (n: number) => Math.round(n * 100) / 100;

/**
 * Today's (UTC) burst spend: each instance's hours today at its price per GPU hour times its GPUs,
 * at least one hour each. Reads the live instances (or takes them, read already) and those given
 * back today, never the days before.
 */
export async function spendToday(ctx: AppContext, live?: NovitaInstanceItem[]): Promise<number> {
  const now = ctx.now();
  const dayStart = Math.floor(now / 86_400_000) * 86_400_000;
  const running = live ?? (await liveBurstInstances(ctx));
  const ended = await endedBurstsToday(ctx);
  // Given back between the two reads: counted once, as ended.
  const endedIds = new Set(ended.map((e) => e.instanceId));
  let total = 0;
  for (const i of [...running.filter((r) => !endedIds.has(r.instanceId)), ...ended]) {
    const end = i.terminatedAt ? Date.parse(i.terminatedAt) : now;
    if (end < dayStart) continue;
    const from = Math.max(Date.parse(i.createdAt), dayStart);
    total += i.price * Math.max(1, i.gpuNum) * Math.max(1, (end - from) / HOUR_MS);
  }
  return total;
}
