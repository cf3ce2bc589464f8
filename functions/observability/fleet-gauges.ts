import type { AppContext } from '../core/context.js';
import { fleetAggregate } from '../nodes/fleet-aggregate.js';
import { readTaskCounts } from '../cluster/task-counts.js';
import { emitFleetGauges, emfEnabled } from './counters.js';

/** Parts older than this are a sweep that stopped running: no gauge rather than a stale one. */
const GAUGE_MAX_AGE_MS = 3 * 60_000;

export interface FleetGauges {
  online: number;
  offline: number;
  queueDepth: number;
  /** Mean of the online nodes' mean GPU utilisation; absent when none reports one. */
  gpuUtilization?: number;
}

/**
 * The fleet gauges from the sweep's aggregate (`FLEETAGG`: one record per shard and link of the
 * latest sweep, node-records.ts `fleetAggregate`) and the queue's counters, never the node records or tasks; undefined
 * before a sweep has written its parts.
 */
export async function fleetGauges(ctx: AppContext): Promise<FleetGauges | undefined> {
  const [agg, counts] = await Promise.all([
    fleetAggregate(ctx, GAUGE_MAX_AGE_MS),
    readTaskCounts(ctx, { finished: false }),
  ]);
  if (!agg) return undefined;
  return {
    online: agg.onlineNodes,
    offline: Math.max(0, (agg.nodes ?? agg.onlineNodes) - agg.onlineNodes),
    queueDepth: counts.states.queued,
    ...(agg.utilCount ? { gpuUtilization: agg.utilSum / agg.utilCount } : {}),
  };
}

/**
 * Nodes online and offline, mean GPU utilisation and the queue depth as EMF values, once per
 * nodes sweep (every minute): the stack's offline-nodes alarm and its dashboard read them. Only
 * where EMF is on (Lambda), so the embedded runtime does not pay the extra reads.
 */
export async function publishFleetGauges(ctx: AppContext): Promise<void> {
  if (!emfEnabled(ctx)) return;
  const gauges = await fleetGauges(ctx);
  if (gauges) emitFleetGauges(ctx, gauges);
}
