/**
 * A global service's reconcile (one copy on each eligible node) in bounded invocations: the node
 * state shards are read a page at a time and each node of the page is planned on its own, with
 * its own slot (`SLOT#N#<shard>#<nodeId>`: one a node, so no invocation needs the others'), its
 * copies and what else it runs. A fleet past one invocation's budget goes on as
 * `reconcile.global` events, one chain per shard, as the node sweep does. Each chain also counts
 * the image's copies on the nodes it reads, for the image's counters' recount at its end
 * (instance-counts.ts `recountGlobalShard`): no read of every copy.
 */
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { fleetKeys } from '../core/keys.js';
import { deleteIf, putIf, putIfAbsent, queryAll } from '../ports/store.js';
import { SHARDS, nodeShard, type LiveRecord, type MetricsRecord } from '../nodes/node-records.js';
import { assemble, getNodeRecord, type NodeItem } from '../nodes/nodes.js';
import { activeRuns } from '../training/model.js';
import { getInstance, getService, nodeInstances, type ServiceItem, type SlotItem } from './model.js';
import { LIVE, globalCount, planReconcile } from './plan.js';
import { planInput, toPlanService } from './plan-input.js';
import type { FleetState } from './fleet-state.js';
import { imageMoves, recountGlobalShard } from './instance-counts.js';

/** Node-state records (two a node) one invocation of a global service's reconcile reads at most. */
export const GLOBAL_ITEMS_PER_INVOCATION = 1_000;

export interface GlobalLink {
  shard: number;
  cursor?: string;
  link: number;
  /** Eligible nodes the shard's chain counted before this link. */
  counted: number;
  budget: number;
  /** The image's copies by status on the nodes the chain read before this link (its recount). */
  copies?: Record<string, number>;
  /** The image's counted moves when the chain began (a chain begun without them recounts nothing). */
  moves?: number;
}

/** One page of a shard's node-state records as nodes (with META, for labels, capacity and policy). */
async function readPage(
  ctx: AppContext,
  shard: number,
  cursor: string | undefined,
  budget: number,
): Promise<{ nodes: NodeItem[]; read: number; cursor?: string }> {
  const { items, cursor: next } = await ctx.store.query<LiveRecord | MetricsRecord>(
    fleetKeys.nodeStatePk(shard),
    {
      limit: Math.max(2, budget),
      ...(cursor ? { cursor } : {}),
    },
  );
  const lives = items.filter((r): r is LiveRecord => r.sk.endsWith(fleetKeys.nodeLiveSuffix));
  const samples = new Map(
    items
      .filter((r): r is MetricsRecord => !r.sk.endsWith(fleetKeys.nodeLiveSuffix))
      .map((r) => [r.nodeId, r] as const),
  );
  const metas = await Promise.all(lives.map((l) => getNodeRecord(ctx, l.nodeId)));
  const nodes = lives.flatMap((l, i) => (metas[i] ? [assemble(metas[i], l, samples.get(l.nodeId))] : []));
  return { nodes, read: items.length, ...(next ? { cursor: next } : {}) };
}

export interface GlobalOutcome {
  /** Eligible nodes of what was read (the service's count there). */
  eligible: number;
  /** Node-state records read. */
  read: number;
  /** One link alone: where its shard's chain goes on. */
  next?: GlobalLink;
}

/**
 * Plans each node of the page on its own (the planner's rules: one copy while the node is
 * eligible, its dead copy replaced after its backoff, a copy on a node that stopped being
 * eligible retired or orphaned), and applies it.
 */
async function reconcilePage(
  ctx: AppContext,
  service: ServiceItem,
  shard: number,
  nodes: NodeItem[],
  apply: ApplyFn,
  /** Adds the image's copies on these nodes by status, as read before any was changed. */
  copiesSeen: Record<string, number>,
): Promise<number> {
  let eligible = 0;
  if (!nodes.length) return 0;
  const imageId = service.imageId;
  const ids = nodes.map((n) => n.nodeId).sort();
  const [slotItems, runs, copies] = await Promise.all([
    queryAll<SlotItem>(ctx.store, `SERVICE#${imageId}`, {
      between: [
        fleetKeys.globalSlot(imageId, shard, ids[0]!).sk,
        fleetKeys.globalSlot(imageId, shard, ids.at(-1)!).sk,
      ],
    }),
    activeRuns(ctx),
    Promise.all(nodes.map((n) => nodeInstances(ctx, n.nodeId))),
  ]);
  const slots = new Map(slotItems.map((s) => [s.nodeId, s] as const));
  for (const [i, node] of nodes.entries()) {
    const here = copies[i]!;
    const key = fleetKeys.globalSlot(imageId, shard, node.nodeId);
    let slot = slots.get(node.nodeId);
    // A copy placed before slots were kept per node: it takes this node's slot rather than being replaced.
    const mine = here.filter((c) => c.imageId === imageId && LIVE.has(c.status));
    for (const c of here) if (c.imageId === imageId) copiesSeen[c.status] = (copiesSeen[c.status] ?? 0) + 1;
    if (!slot && mine.length) {
      const adopted: SlotItem = {
        ...key,
        imageId,
        ordinal: 0,
        instanceId: mine[0]!.instanceId,
        nodeId: node.nodeId,
        claimedAt: ctx.now(),
      };
      if (await putIfAbsent(ctx.store, adopted)) slot = adopted;
    }
    const state: FleetState = {
      nodes: [node],
      services: [service],
      instances: here,
      slots: slot ? [{ ...slot, ordinal: 0 }] : [],
      held: runs.flatMap((r) =>
        r.nodeId === node.nodeId && r.reserve ? [{ nodeId: r.nodeId, reserve: r.reserve }] : [],
      ),
    };
    const planned = toPlanService(service, [node]);
    const input = planInput(ctx, state, [planned]);
    eligible += globalCount(input.nodes, planned);
    // Planned once the apply step has recorded the backoffs it finds (they hold a dead copy in its slot).
    await apply(
      state,
      (options) => planReconcile(planInput(ctx, state, [planned], options)),
      () => key,
    );
  }
  return eligible;
}

/** The reconciler's apply step for one node's plan (reconciler.ts gives it), with that node's slot key. */
export type ApplyFn = (
  state: FleetState,
  plan: (options: { retryNow?: boolean }) => ReturnType<typeof planReconcile>,
  slotKey: (ordinal: number) => { pk: string; sk: string },
) => Promise<void>;

/**
 * The shard's chain ended: its count is stored, and the service's count becomes the sum of the
 * shards' once each has one (one query of eight records).
 */
async function recordCount(ctx: AppContext, imageId: string, shard: number, counted: number): Promise<void> {
  await ctx.store.put({ ...fleetKeys.globalCount(imageId, shard), count: counted, atMs: ctx.now() });
  const { items } = await ctx.store.query<{ pk: string; sk: string; count: number }>(`SERVICE#${imageId}`, {
    prefix: fleetKeys.globalCountPrefix,
  });
  if (items.length < SHARDS.length) return;
  const total = items.reduce((sum, i) => sum + i.count, 0);
  const service = await getService(ctx, imageId);
  if (!service?.global || service.desiredCount === total) return;
  const { version, ...item } = service;
  // Changed meanwhile (false): the next reconcile counts again.
  await putIf(
    ctx.store,
    { ...item, desiredCount: total, version: (version ?? 1) + 1 },
    { version: version ?? 1 },
  );
}

/**
 * Slots of the layout before (by ordinal) that a global service no longer uses: a page of them
 * each run, each once its copy holds its node's slot (adopted) or none does.
 */
async function dropOrdinalSlots(ctx: AppContext, imageId: string): Promise<void> {
  const { items } = await ctx.store.query<SlotItem>(`SERVICE#${imageId}`, {
    between: ['SLOT#0', 'SLOT#9~'],
    limit: 100,
  });
  for (const s of items) {
    const k = fleetKeys.globalSlot(imageId, nodeShard(s.nodeId), s.nodeId);
    const own = await ctx.store.get<SlotItem>(k.pk, k.sk);
    if (!own) {
      const copy = await getInstance(ctx, s.instanceId);
      // Still running and not yet adopted: its node's next page adopts it first.
      if (copy && LIVE.has(copy.status)) continue;
    }
    await deleteIf(ctx.store, s.pk, s.sk, { equals: { instanceId: s.instanceId } });
  }
}

/**
 * A global service's reconcile from `start`: with `fanOut`, the shards from `start.shard` in turn
 * within the budget, the rest as `reconcile.global` events (this shard from its cursor, every shard
 * not begun from its start); without, one link of one shard's chain.
 */
export async function reconcileGlobal(
  ctx: AppContext,
  service: ServiceItem,
  start: GlobalLink,
  fanOut: boolean,
  apply: ApplyFn,
): Promise<GlobalOutcome> {
  const total: GlobalOutcome = { eligible: 0, read: 0 };
  if (fanOut && start.shard === 0 && !start.cursor) await dropOrdinalSlots(ctx, service.imageId);
  let left = start.budget;
  const shards = fanOut ? SHARDS.slice(start.shard) : [start.shard];
  for (const [i, shard] of shards.entries()) {
    const first = shard === start.shard;
    // Each page holds whole nodes' pairs of records where it can: an odd budget reads one record fewer.
    const cursor = first ? start.cursor : undefined;
    // Read before the chain's first page: the recount at its end needs nothing counted to move meanwhile.
    const moves = cursor === undefined ? await imageMoves(ctx, service.imageId) : start.moves;
    const page = await readPage(ctx, shard, cursor, left - (left % 2));
    left -= page.read;
    total.read += page.read;
    const copies = { ...(first ? start.copies : {}) };
    const eligible = await reconcilePage(ctx, service, shard, page.nodes, apply, copies);
    total.eligible += eligible;
    const counted = (first ? start.counted : 0) + eligible;
    const link = first ? start.link : 0;
    const base = { type: 'reconcile.global' as const, imageId: service.imageId, budget: start.budget };
    if (page.cursor) {
      const next = {
        shard,
        cursor: page.cursor,
        link: link + 1,
        counted,
        budget: start.budget,
        copies,
        ...(moves !== undefined ? { moves } : {}),
      };
      // One link alone: its caller sends the next (the `reconcile.global` handler does).
      if (!fanOut) return { ...total, next };
      await emit(ctx, { ...base, ...next });
    } else {
      await recordCount(ctx, service.imageId, shard, counted);
      if (moves !== undefined) await recountGlobalShard(ctx, service.imageId, shard, copies, moves);
    }
    const rest = shards.slice(i + 1);
    if (page.cursor || (left <= 1 && rest.length)) {
      for (const s of rest) await emit(ctx, { ...base, shard: s, link: 0, counted: 0 });
      break;
    }
  }
  return total;
}
