/**
 * Loads node records straight into the store, as registration and a heartbeat of a registered node
 * leave them (META, liveness, metrics, free-capacity and eligible-node entries, address index and
 * online-Jetson entry), so a fleet of thousands exists in
 * seconds: bench:scale and the read-count suites measure operations against it. The items go into
 * the runtime's own table (the store the bench measures) in BatchWriteItem calls of 25, beneath the
 * meter: loading is set-up, not an operation measured.
 */
import { keys, nodeAddressKeys } from '../../functions/core/keys.js';
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
import { addressEntries } from '../../functions/nodes/address-index.js';
import { DynamoStore } from '../../functions/adapters/dynamo-store.js';
import type { Store, StoreItem } from '../../functions/ports/store.js';
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
  options: { progress?: (line: string) => void } = {},
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
  const order = new Map(ids.map((id, i) => [id, i] as const));
  const items = (nodeId: string, i: number): StoreItem[] => {
    const token = newToken(nodeId);
    tokens.set(nodeId, token);
    // Each its own address (100.64.0.0/10, apart from the registered nodes'), indexed as registration does.
    const addresses = [`100.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`];
    return [
      {
        ...meta,
        ...keys.node(nodeId),
        ...keys.nodesIndex(nodeId),
        nodeId,
        nodeName: nodeId,
        hostname: nodeId,
        addresses,
        tokenHash: hashToken(token),
      },
      ...addressEntries({ nodeId, nodeName: nodeId, hostname: nodeId, addresses, jetson: meta.jetson }),
      // Online: a Jetson's online-Jetson entry too.
      ...(meta.jetson ? [{ ...nodeAddressKeys.jetsonUp(nodeId), nodeId }] : []),
      { ...live, ...liveKey(nodeId), nodeId, name: nodeId, lastHeartbeatMs: ctx.now() },
      { ...sample, ...metricsKey(nodeId), nodeId },
      { ...freeKey(nodeId), nodeId } satisfies FreeRecord,
      { ...upKey(nodeId), nodeId } satisfies FreeRecord,
    ];
  };
  let done = 0;
  const tick = (n: number) => {
    const before = Math.floor(done / 10_000);
    done += n;
    if (Math.floor(done / 10_000) > before) options.progress?.(`loaded ${done} of ${count}`);
  };
  const table = dynamoBeneath(ctx.store);
  if (table) {
    // Batches of 100 nodes (BatchWriteItem calls of 25 items), a few in flight.
    const batches = Array.from({ length: Math.ceil(ids.length / 100) }, (_, i) =>
      ids.slice(i * 100, i * 100 + 100),
    );
    await pool(batches, 4, async (batch) => {
      await table.putBatch(batch.flatMap((id) => items(id, order.get(id)!)));
      tick(batch.length);
    });
  } else
    await pool(ids, 64, async (nodeId) => {
      for (const item of items(nodeId, order.get(nodeId)!)) await ctx.store.put(item);
      tick(1);
    });
  return { ids, tokens };
}

/** The embedded runtime's DynamoStore under the meter's wrapper (its `inner`), when there is one. */
function dynamoBeneath(store: Store): DynamoStore | undefined {
  let s: unknown = store;
  for (let depth = 0; depth < 3 && s; depth++) {
    if (s instanceof DynamoStore) return s;
    s = (s as { inner?: unknown }).inner;
  }
  return undefined;
}
