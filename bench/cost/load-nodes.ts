/**
 * Loads node records straight into the store, as registration and a heartbeat of a registered node
 * leave them (META, liveness, metrics, free-capacity and eligible-node entries), so a fleet of thousands exists in
 * seconds: bench:scale and the read-count suites measure operations against it.
 */
import { keys } from '../../functions/core/keys.js';
import { hashToken, newToken } from '../../functions/core/tokens.js';
import {
  freeKey,
  liveKey,
  metricsKey,
  upKey,
  type FreeRecord,
  type LiveRecord,
  type MetricsRecord,
} from '../../functions/nodes/node-records.js';
import type { NodeItem } from '../../functions/nodes/nodes.js';
import type { Fleet } from './fleet.js';

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** `count` more nodes shaped like the fleet's first registered node; their ids and credentials. */
export async function loadNodeRecords(
  fleet: Fleet,
  count: number,
  prefix = 'scale',
): Promise<{ ids: string[]; tokens: Map<string, string> }> {
  const ctx = fleet.rt.ctx;
  const templateId = fleet.nodes[0]!.nodeId;
  const lk = liveKey(templateId);
  const mk = metricsKey(templateId);
  const live = (await ctx.store.get<LiveRecord>(lk.pk, lk.sk))!;
  const sample = (await ctx.store.get<MetricsRecord>(mk.pk, mk.sk))!;
  const meta = (await ctx.store.get<NodeItem>(keys.node(templateId).pk, 'META'))!;
  const tokens = new Map<string, string>();
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);
  await pool(ids, 64, async (nodeId) => {
    const token = newToken(nodeId);
    tokens.set(nodeId, token);
    await ctx.store.put({
      ...meta,
      ...keys.node(nodeId),
      ...keys.nodesIndex(nodeId),
      nodeId,
      nodeName: nodeId,
      tokenHash: hashToken(token),
    });
    await ctx.store.put({ ...live, ...liveKey(nodeId), nodeId, lastHeartbeatMs: ctx.now() });
    await ctx.store.put({ ...sample, ...metricsKey(nodeId), nodeId });
    await ctx.store.put<FreeRecord>({ ...freeKey(nodeId), nodeId });
    await ctx.store.put<FreeRecord>({ ...upKey(nodeId), nodeId });
  });
  return { ids, tokens };
}
