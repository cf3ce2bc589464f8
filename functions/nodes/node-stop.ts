import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { updateIf } from '../ports/store.js';
import { clearFree, clearUp, liveKey, type LiveRecord } from './node-records.js';
import { setProblemMarker } from './node-problems.js';
import { clearJetsonUp } from './address-index.js';

/**
 * The agent is stopping (systemctl stop, a container stop): the node goes offline now, as the
 * sweep would take it offline once its heartbeats had been silent for NODE_OFFLINE_AFTER_SECONDS
 * (status, the eligible-node, free-capacity and online-Jetson indexes, its problem marker,
 * `node.offline` and what it sets moving),
 * and reads offline (`isOnline`) until its agent registers again. Its queue, credential, cordon
 * state and records stay (a stop is not a retire): commands sent meanwhile wait on its queue, and
 * its next registration and heartbeat bring it back online. False when it has no liveness record.
 */
export async function markNodeStopped(ctx: AppContext, nodeId: string): Promise<boolean> {
  const k = liveKey(nodeId);
  const stoppedAtMs = ctx.now();
  const live = await updateIf<LiveRecord>(
    ctx.store,
    k.pk,
    k.sk,
    { set: { status: 'offline', stoppedAtMs } },
    { equals: { status: 'online' } },
  );
  // Already offline (swept, or a second word): marked, nothing more to set moving.
  if (!live)
    return (
      (await updateIf<LiveRecord>(ctx.store, k.pk, k.sk, { set: { stoppedAtMs } }, { exists: true })) !==
      undefined
    );
  await Promise.all([
    clearFree(ctx, nodeId),
    clearUp(ctx, nodeId),
    setProblemMarker(ctx, nodeId, ['node_offline']),
    ...(live.unifiedMb !== undefined && live.name
      ? [clearJetsonUp(ctx, { nodeId, nodeName: live.name })]
      : []),
  ]);
  await emit(ctx, { type: 'node.offline', nodeId, lastHeartbeat: live.lastHeartbeat });
  ctx.logger.info('node offline: its agent is stopping', { nodeId });
  return true;
}
