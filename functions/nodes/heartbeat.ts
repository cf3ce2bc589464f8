/**
 * Heartbeat ingestion: a beat writes the node's small liveness record (with the metric history
 * points it carries), and its metrics sample only when it moved (node-records.ts).
 */
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import {
  liveKey,
  markFree,
  markUp,
  metricsDue,
  metricsKey,
  liveFacts,
  type HistoryBuffer,
  type LiveRecord,
  type MetricsRecord,
} from './node-records.js';
import type { HeartbeatRequest } from '../../protocol/messages.js';
import { indexHeartbeat } from '../cluster/model-residency.js';
import { assemble, isOnline, stateOf, type ContainerSample, type NodeItem } from './node-model.js';
import { nodeProblemKinds, sameKinds, setProblemMarker } from './node-problems.js';
import { markJetsonUp } from './address-index.js';

/**
 * Stores a heartbeat: the liveness record every time (one write unit), the metrics sample only
 * when it moved (node-records.ts metricsDue). Says whether the node was offline before it.
 */
export async function recordHeartbeat(
  ctx: AppContext,
  node: NodeItem,
  hb: HeartbeatRequest,
  /** Stores the sample whatever it moved, when this says so of the node as it was (a signal fired on it). */
  mustStore?: (before: NodeItem) => boolean,
  /**
   * The metric history points the liveness record carries after this beat, from those it carried
   * (metric-history.ts advanceHistory): they ride on the write the beat makes anyway.
   */
  history?: (buffer: HistoryBuffer | undefined) => Promise<HistoryBuffer | undefined>,
): Promise<{ node: NodeItem; before: NodeItem; cameOnline: boolean }> {
  const now = ctx.now();
  const lk = liveKey(node.nodeId);
  const mk = metricsKey(node.nodeId);
  const { live, sample: stored } = await stateOf(ctx, node.nodeId);
  const prior = live ?? node;
  const wasOnline = prior.status === 'online' && isOnline(prior, ctx, now);
  const containerStats: Record<string, ContainerSample> = {};
  for (const c of hb.containers) {
    containerStats[c.instanceId] = {
      state: c.state,
      kind: c.kind,
      cpuPercent: c.stats?.cpuPercent ?? null,
      memoryPercent: c.stats?.memoryPercent ?? null,
      memoryUsageMb: c.stats?.memoryUsageMb ?? null,
    };
  }
  const fresh = { metrics: hb.metrics, loadedModels: hb.loadedModels, containerStats };
  const buffer = history ? await history(live?.history) : live?.history;
  const beat: LiveRecord = {
    ...lk,
    nodeId: node.nodeId,
    status: 'online',
    lastHeartbeat: new Date(now).toISOString(),
    lastHeartbeatMs: now,
    ...liveFacts(node),
    ...(buffer ? { history: buffer } : {}),
  };
  const before = assemble(node, live, stored);
  // A sample from before the model residency index is stored again, marked, once its models are indexed.
  const indexed = stored?.indexed === true;
  const due = !indexed || metricsDue(ctx, stored, fresh, now) || (mustStore?.(before) ?? false);
  const sample: MetricsRecord = due
    ? { ...mk, nodeId: node.nodeId, ...fresh, storedAtMs: now, indexed: true }
    : { ...stored!, ...fresh };
  // The residency index first, only when the reported models changed (a change always stores the
  // sample): a sample stored after a lost index write would hide the change from the next beat.
  await indexHeartbeat(ctx, node.nodeId, indexed ? stored.loadedModels : undefined, hb.loadedModels);
  // Two items, written side by side: the liveness record does not wait for the metrics.
  await Promise.all([ctx.store.put(beat), due ? ctx.store.put(sample) : undefined]);
  // The problem marker when what readers see of the node changed its problems (node-problems.ts).
  const kinds = nodeProblemKinds(assemble(node, beat, due ? sample : stored), true);
  if (!wasOnline || !sameKinds(kinds, nodeProblemKinds(before, true)))
    await setProblemMarker(ctx, node.nodeId, kinds);
  const model = [...hb.loadedModels].sort()[0];
  if (!wasOnline) {
    await Promise.all([
      ...(node.cordoned
        ? []
        : [
            markFree(ctx, node.nodeId, { keep: true, ...(model ? { model } : {}) }),
            markUp(ctx, node.nodeId),
          ]),
      ...(node.jetson ? [markJetsonUp(ctx, node)] : []),
    ]);
    await emit(ctx, { type: 'node.online', nodeId: node.nodeId });
  }
  // Readers of this heartbeat's node see what it reported, stored or not.
  return { node: assemble(node, beat, sample), before, cameOnline: !wasOnline };
}
