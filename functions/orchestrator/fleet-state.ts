import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import { getNode, isCordoned, isOnline, type NodeItem } from '../nodes/nodes.js';
import { NODE_SHARDS, clearUp, type FreeRecord } from '../nodes/node-records.js';
import {
  imageInstances,
  nodeInstances,
  serviceSlots,
  type InstanceItem,
  type ServiceItem,
  type SlotItem,
} from './model.js';
import type { Reservation } from './resources.js';
import { activeRuns } from '../training/model.js';

/** What a reconcile reads: the nodes, services, copies and slots it plans over. */
export interface FleetState {
  nodes: NodeItem[];
  services: ServiceItem[];
  instances: InstanceItem[];
  slots: SlotItem[];
  /** What training runs hold on their nodes: one capacity model for both workloads. */
  held: { nodeId: string; reserve: Reservation }[];
}

/** The most eligible nodes one read of the index takes (a start that needs more reads the next page). */
export const NODE_PAGE = 16;

/** What a reconcile of one image read for its nodes: lookups of the eligible-node index and nodes read. */
export interface CandidateReads {
  lookups: number;
  nodes: number;
}

/**
 * One image's state for a reconcile that does not read the fleet: the service, its slots and
 * copies, the nodes they are on (and its pinned node), and a page of the eligible-node index
 * (`NODEUP#<shard>`, from a random shard on), each candidate with the copies it already runs (their
 * reservations count). `more()` reads the next page, for when the plan could not place every copy;
 * false once the index is read through. Undefined for a global service (its reconcile reads the
 * eligible nodes a page at a time: global.ts; a start's preflight reads it as a replicated one)
 * or one that is gone.
 */
export async function imageState(
  ctx: AppContext,
  service: ServiceItem | undefined,
): Promise<ImageState | undefined> {
  if (!service || service.global) return undefined;
  const imageId = service.imageId;
  const [own, slots, runs] = await Promise.all([
    imageInstances(ctx, imageId),
    serviceSlots(ctx, imageId),
    activeRuns(ctx),
  ]);
  const state: FleetState = {
    nodes: [],
    services: [service],
    instances: [...own],
    slots,
    held: runs.flatMap((r) => (r.nodeId && r.reserve ? [{ nodeId: r.nodeId, reserve: r.reserve }] : [])),
  };
  const read: CandidateReads = { lookups: 0, nodes: 0 };
  const known = new Set<string>();
  const seenInstances = new Set(own.map((i) => i.instanceId));
  const addNodes = async (ids: string[], fromIndex: boolean) => {
    const fresh = [...new Set(ids)].filter((id) => !known.has(id));
    for (const id of fresh) known.add(id);
    read.nodes += fresh.length;
    const loaded = await Promise.all(
      fresh.map(async (id) => [id, await getNode(ctx, id), await nodeInstances(ctx, id)] as const),
    );
    const now = ctx.now();
    for (const [id, node, instances] of loaded) {
      if (node) state.nodes.push(node);
      for (const i of instances)
        if (!seenInstances.has(i.instanceId)) {
          seenInstances.add(i.instanceId);
          state.instances.push(i);
        }
      // A stale entry (gone, offline, cordoned) leaves the index; the next liveness change writes it back.
      if (fromIndex && (!node || !isOnline(node, ctx, now) || isCordoned(node))) await clearUp(ctx, id);
    }
  };
  await addNodes(
    [...own.map((i) => i.nodeId), ...slots.map((s) => s.nodeId), ...(service.nodeId ? [service.nodeId] : [])],
    false,
  );
  // Pinned: its node is the only place it may go.
  const start = Math.floor(Math.random() * NODE_SHARDS);
  let visited = service.nodeId ? NODE_SHARDS : 0;
  let cursor: string | undefined;
  const more = async (): Promise<boolean> => {
    const ids: string[] = [];
    while (visited < NODE_SHARDS && ids.length < NODE_PAGE) {
      read.lookups++;
      const page = await ctx.store.query<FreeRecord>(fleetKeys.nodeUpPk((start + visited) % NODE_SHARDS), {
        limit: NODE_PAGE - ids.length,
        ...(cursor ? { cursor } : {}),
      });
      ids.push(...page.items.map((r) => r.nodeId).filter((id) => !known.has(id)));
      cursor = page.cursor;
      if (!cursor) visited++;
    }
    if (!ids.length) return false;
    await addNodes(ids, true);
    return true;
  };
  await more();
  return { state, more, read };
}

export interface ImageState {
  state: FleetState;
  more: () => Promise<boolean>;
  read: CandidateReads;
}
