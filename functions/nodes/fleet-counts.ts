/**
 * Fleet counts for readers: the sweep's aggregate when fresh; without it, a bounded count of the
 * liveness records or the last aggregate of a large fleet, never a read of every node after the
 * first sweep.
 */
import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import { AGGREGATE_MAX_AGE_MS, fleetAggregate, type FleetPart } from './fleet-aggregate.js';
import { isOnline } from './node-model.js';
import { SHARDS, type LiveRecord } from './node-records.js';

/** Node-state records a count reads when the sweep left no fresh aggregate (two a node: about 1,000 nodes). */
export const COUNT_PROBE_RECORDS = 2_000;

/** Nodes and online nodes from the liveness records, reading at most `budget` node-state records; undefined past it. */
async function countFromState(
  ctx: AppContext,
  budget: number,
): Promise<{ nodes: number; online: number } | undefined> {
  const now = ctx.now();
  const out = { nodes: 0, online: 0 };
  let left = budget;
  for (const shard of SHARDS) {
    let cursor: string | undefined;
    do {
      const page = await ctx.store.query<LiveRecord>(fleetKeys.nodeStatePk(shard), {
        ...(Number.isFinite(left) ? { limit: left + 1 } : {}),
        ...(cursor ? { cursor } : {}),
      });
      left -= page.items.length;
      if (left < 0) return undefined;
      for (const r of page.items) {
        if (!r.sk.endsWith(fleetKeys.nodeLiveSuffix)) continue;
        out.nodes++;
        if (isOnline(r, ctx, now)) out.online++;
      }
      cursor = page.cursor;
    } while (cursor);
  }
  return out;
}

/**
 * The sweep's aggregate for a reader that would otherwise read the fleet: a fresh one; without it
 * (the sweep stalled), the last one however old when it counted a fleet past COUNT_PROBE_RECORDS
 * node-state records (an old figure, never a read of every node of a large fleet); undefined for a
 * smaller fleet (the caller's read of it is bounded) and before the first sweep ever.
 */
export async function readerAggregate(ctx: AppContext): Promise<FleetPart | undefined> {
  const agg = await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS);
  if (agg) return agg;
  const last = await fleetAggregate(ctx, Number.POSITIVE_INFINITY);
  return last && 2 * (last.nodes ?? last.onlineNodes) > COUNT_PROBE_RECORDS ? last : undefined;
}

/**
 * Nodes registered and online: the sweep's aggregate. Without a fresh one, a fleet that fits
 * COUNT_PROBE_RECORDS is counted from its liveness records, a larger one from the last aggregate
 * however old (the sweep stalled). Only before the first sweep ever (a deployment whose minute
 * schedule has not fired yet) does it read every liveness record; that sweep writes the aggregate.
 */
export async function fleetCounts(ctx: AppContext): Promise<{ nodes: number; online: number }> {
  const agg = await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS);
  if (agg) return { nodes: agg.nodes ?? agg.onlineNodes, online: agg.onlineNodes };
  const small = await countFromState(ctx, COUNT_PROBE_RECORDS);
  if (small) return small;
  const stale = await fleetAggregate(ctx, Number.POSITIVE_INFINITY);
  if (stale) return { nodes: stale.nodes ?? stale.onlineNodes, online: stale.onlineNodes };
  return (await countFromState(ctx, Number.POSITIVE_INFINITY))!;
}
