import type { AppContext } from '../core/context.js';
import { fleetClusterKeys } from '../core/keys.js';
import { queryAll, type StoreItem } from '../ports/store.js';

/**
 * Node id → the name of the cluster `/api/clusters/` put it in (the first by name when several):
 * one query of the cluster index, read where node views are built.
 */
export async function clusterMembership(ctx: AppContext): Promise<Map<string, string>> {
  const clusters = await queryAll<StoreItem & { name: string; nodeIds: string[] }>(
    ctx.store,
    fleetClusterKeys.clustersPk,
    { index: 'gsi1' },
  );
  const out = new Map<string, string>();
  for (const c of clusters) for (const id of c.nodeIds) if (!out.has(id)) out.set(id, c.name);
  return out;
}
