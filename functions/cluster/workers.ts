import type { AppContext } from '../core/context.js';
import { fleetKeys, taskQueueKeys } from '../core/keys.js';
import type { SchedNode } from '../task-planner/index.js';
import { getNode, isCordoned, isOnline, listNodes, resolveNode, type NodeItem } from '../nodes/nodes.js';
import { NODE_SHARDS, clearFree, maxConcurrencyOf, type FreeRecord } from '../nodes/node-records.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import { heldSlots, nodeSlots, slotsRunning, type SlotItem } from './slots.js';
import { holdersOf, indexResidency } from './model-residency.js';

/**
 * Workers are fleet nodes (the fleet's node records), seen through what the scheduler needs:
 * GPU memory, resident models, running tasks, concurrency.
 */

export { MAX_CONCURRENCY_LABEL, maxConcurrencyOf } from '../nodes/node-records.js';

/**
 * How long the control plane's own record of a node's models wins over the heartbeat after it
 * changed them: the agent loads a model while it runs the task, so a heartbeat sent meanwhile
 * still shows the old one.
 */
export const MODEL_SETTLE_MS = 60_000;

export interface NodeModelsItem extends StoreItem {
  nodeId: string;
  models: string[];
  updatedAtMs: number;
}

export interface Worker {
  node: NodeItem;
  id: string;
  name: string;
  online: boolean;
  gpuType: string | undefined;
  gpuMemoryTotalMb: number;
  gpuMemoryUsedMb: number | undefined;
  gpuUtilization: number | undefined;
  temperature: number | undefined;
  driverVersion: string | undefined;
  maxConcurrency: number;
  /** Models resident as the scheduler sees them. */
  resident: string[];
  /** Models the last heartbeat saw running. */
  reported: string[];
  running: SlotItem[];
}

const sum = (xs: (number | null | undefined)[]): number | undefined => {
  const vs = xs.filter((x): x is number => typeof x === 'number');
  return vs.length ? vs.reduce((a, b) => a + b, 0) : undefined;
};

/** The control plane's record while it is fresh, else the heartbeat. */
export function residentModels(node: NodeItem, record: NodeModelsItem | undefined): string[] {
  if (!record) return [...(node.loadedModels ?? [])].sort();
  const heartbeatAfterSettle =
    node.lastHeartbeatMs !== undefined && node.lastHeartbeatMs >= record.updatedAtMs + MODEL_SETTLE_MS;
  return [...(heartbeatAfterSettle ? (node.loadedModels ?? []) : record.models)].sort();
}

export function toWorker(
  ctx: AppContext,
  node: NodeItem,
  record: NodeModelsItem | undefined,
  running: SlotItem[],
  now = ctx.now(),
): Worker {
  // The latest heartbeat's GPUs, else the registration's.
  const gpus = node.metrics?.gpus?.length ? node.metrics.gpus : (node.gpus ?? []);
  const total = sum(gpus.map((g) => g.memoryTotalMiB));
  const utils = gpus.map((g) => g.utilizationGpu).filter((u): u is number => typeof u === 'number');
  const temps = gpus.map((g) => g.temperatureC).filter((t): t is number => typeof t === 'number');
  // Jetsons share system memory with the GPU: nvidia-smi reports none, the board's RAM is the budget.
  const unified = !!node.jetson || (gpus.length > 0 && total === undefined);
  return {
    node,
    id: node.nodeId,
    name: node.nodeName,
    online: isOnline(node, ctx, now),
    gpuType: gpus[0]?.name ?? (node.jetson ? (node.jetson.model ?? 'NVIDIA Jetson') : undefined),
    gpuMemoryTotalMb: total ?? (unified ? node.memoryMb : 0),
    gpuMemoryUsedMb:
      sum(gpus.map((g) => g.memoryUsedMiB)) ??
      (unified ? (node.metrics?.memoryUsedMb ?? undefined) : undefined),
    gpuUtilization: utils.length ? utils.reduce((a, b) => a + b, 0) / utils.length : undefined,
    temperature: temps.length ? Math.max(...temps) : undefined,
    driverVersion: gpus.find((g) => g.driverVersion)?.driverVersion ?? undefined,
    maxConcurrency: maxConcurrencyOf(node),
    resident: residentModels(node, record),
    reported: [...(node.loadedModels ?? [])].sort(),
    running,
  };
}

export async function nodeModelRecords(ctx: AppContext): Promise<Map<string, NodeModelsItem>> {
  const items = await queryAll<NodeModelsItem>(ctx.store, taskQueueKeys.nodeModelsPk, { index: 'gsi1' });
  return new Map(items.map((i) => [i.nodeId, i] as const));
}

export async function getNodeModels(ctx: AppContext, nodeId: string): Promise<NodeModelsItem | undefined> {
  const k = taskQueueKeys.nodeModels(nodeId);
  return ctx.store.get<NodeModelsItem>(k.pk, k.sk);
}

/** Records what the control plane just told the node to serve, and its planned entries in the residency index. */
export async function setNodeModels(ctx: AppContext, nodeId: string, models: string[]): Promise<void> {
  const before = await getNodeModels(ctx, nodeId);
  const after = [...new Set(models)].sort();
  await ctx.store.put<NodeModelsItem>({
    ...taskQueueKeys.nodeModels(nodeId),
    nodeId,
    models: after,
    updatedAtMs: ctx.now(),
  });
  // Every planned model again (a lost write of an earlier change comes right), the ones gone off.
  await indexResidency(ctx, nodeId, 'planned', { add: after, drop: before?.models ?? [] });
}

/** Workers of `nodes` from the fleet's model records and held slots. */
function workersFrom(
  ctx: AppContext,
  nodes: NodeItem[],
  records: Map<string, NodeModelsItem>,
  slots: SlotItem[],
): Worker[] {
  const now = ctx.now();
  const byNode = new Map<string, SlotItem[]>();
  for (const s of slots) {
    const list = byNode.get(s.nodeId);
    if (list) list.push(s);
    else byNode.set(s.nodeId, [s]);
  }
  return nodes.map((n) => toWorker(ctx, n, records.get(n.nodeId), byNode.get(n.nodeId) ?? [], now));
}

/** Every worker with its running tasks (held slots). */
export async function loadWorkers(ctx: AppContext, slots: SlotItem[]): Promise<Worker[]> {
  const [nodes, records] = await Promise.all([listNodes(ctx), nodeModelRecords(ctx)]);
  return workersFrom(ctx, nodes, records, slots);
}

/**
 * The workers of a page of nodes (nodePage): each node's own model record and held slots, or, when
 * the page is the whole fleet, the fleet's model records and held slots (fewer units than two reads a node).
 */
export async function pageWorkers(ctx: AppContext, nodes: NodeItem[], whole: boolean): Promise<Worker[]> {
  if (whole) {
    const [records, slots] = await Promise.all([nodeModelRecords(ctx), heldSlots(ctx)]);
    return workersFrom(ctx, nodes, records, slots);
  }
  const now = ctx.now();
  return Promise.all(
    nodes.map(async (node) => {
      const [record, running] = await Promise.all([
        getNodeModels(ctx, node.nodeId),
        queryAll<SlotItem>(ctx.store, taskQueueKeys.nodeSlot(node.nodeId, 0).pk),
      ]);
      return toWorker(ctx, node, record, running, now);
    }),
  );
}

export function toSchedNode(w: Worker): SchedNode {
  return {
    id: w.id,
    // A cordoned node takes no new task nor model; what it runs stays unless it is drained.
    // A process node runs no model server (tasks are forwarded to a container's published port).
    online: w.online && !isCordoned(w.node) && w.node.driver !== 'process',
    gpuMemoryTotalMb: w.gpuMemoryTotalMb,
    ...(w.gpuMemoryUsedMb !== undefined ? { gpuMemoryUsedMb: w.gpuMemoryUsedMb } : {}),
    loadedModels: w.resident,
    runningTasks: w.running.length,
    maxConcurrency: w.maxConcurrency,
    ...(w.gpuType !== undefined ? { gpuType: w.gpuType } : {}),
    labels: w.node.labels ?? {},
  };
}

/**
 * The workers the residency index names for any of `models` (model-residency.ts), each from its own
 * records (node, model record, and with `slots` its held slots): what it reads grows with the
 * holders, never with the fleet. Entries of nodes gone are skipped.
 */
export async function holderWorkers(
  ctx: AppContext,
  models: Iterable<string>,
  opts: { slots: boolean },
): Promise<Worker[]> {
  const workers = await workersOf(ctx, await holdersOf(ctx, models), opts);
  return workers.sort((a, b) => a.name.localeCompare(b.name));
}

/** Workers of these nodes, each from its own records (node, model record, with `slots` its held slots); gone nodes skipped. */
async function workersOf(
  ctx: AppContext,
  ids: Iterable<string>,
  opts: { slots: boolean },
): Promise<Worker[]> {
  const now = ctx.now();
  const workers = await Promise.all(
    [...new Set(ids)].map(async (id) => {
      const [node, record, running] = await Promise.all([
        getNode(ctx, id),
        getNodeModels(ctx, id),
        opts.slots ? nodeSlots(ctx, id) : [],
      ]);
      return node && toWorker(ctx, node, record, running, now);
    }),
  );
  return workers.filter((w): w is Worker => w !== undefined);
}

/** Holders of each model a rebalance plan reads at most (the residency index's first, by node id). */
const PLAN_HOLDERS = 16;

/**
 * The workers a rebalance plans over, a window of the fleet: the first PLAN_HOLDERS holders of each
 * of `models` (the residency index) and, with `free` (tasks are queued), a page of CANDIDATE_PAGE
 * nodes of the free-capacity index where queued-for models can go, each with its own held slots.
 * What it reads grows with the catalogue and the pages, never with the fleet; a plan run again
 * sees the window its last one left.
 */
export async function planWorkers(
  ctx: AppContext,
  models: Iterable<string>,
  opts: { free: boolean },
): Promise<Worker[]> {
  const [holders, page] = await Promise.all([
    holdersOf(ctx, models, PLAN_HOLDERS),
    opts.free ? freeNodeIds(ctx, CANDIDATE_PAGE) : { ids: [] },
  ]);
  return workersOf(ctx, [...holders, ...page.ids], { slots: true });
}

/**
 * Up to `limit` nodes of the free-capacity index, shards in order (the same fleet gives the same
 * nodes), and the lookups that took.
 */
async function freeNodeIds(ctx: AppContext, limit: number): Promise<{ ids: string[]; lookups: number }> {
  const ids: string[] = [];
  let lookups = 0;
  for (let shard = 0; shard < NODE_SHARDS && ids.length < limit; shard++) {
    lookups++;
    const { items } = await ctx.store.query<FreeRecord>(fleetKeys.nodeFreePk(shard), {
      limit: limit - ids.length,
    });
    ids.push(...items.map((r) => r.nodeId));
  }
  return { ids, lookups };
}

/** One worker by node id or name from its own records (node, models, held slots): no fleet read. */
export async function loadWorker(ctx: AppContext, idOrName: string): Promise<Worker | undefined> {
  const node = await resolveNode(ctx, idOrName);
  return node ? (await pageWorkers(ctx, [node], false))[0] : undefined;
}

/** By node id or node name (Fleet Commander names nodes like `agx0`). */
export function findWorker(workers: Worker[], idOrName: string): Worker | undefined {
  return workers.find((w) => w.id === idOrName) ?? workers.find((w) => w.name === idOrName);
}

/** The most free nodes one lookup of the free-capacity index reads. */
export const CANDIDATE_PAGE = 16;

export interface Candidates {
  workers: Worker[];
  /** Lookups of the free-capacity index and nodes read: what a placement paid for its candidates. */
  read: { lookups: number; nodes: number };
}

/**
 * The workers a placement considers, from the free-capacity index (nodes/node-records.ts) instead of
 * the fleet: free nodes with a queued model resident (one gsi1 page per model), the nodes holding
 * slots running a queued model (a page: the plan waits for them rather than switch another node), the nodes
 * named in `include`, then, only when those cannot take every queued task, a page of free nodes
 * from the shards. Every candidate is read and
 * checked; index entries of nodes that cannot take a task (gone, offline, cordoned, full) are
 * dropped. What it reads grows with the queue's models and the page, never with the fleet.
 */
export async function loadCandidates(
  ctx: AppContext,
  input: { demand: Map<string, number>; include?: string[] },
): Promise<Candidates> {
  const read = { lookups: 0, nodes: 0 };
  const now = ctx.now();
  const bySlotNode = new Map<string, SlotItem[]>();
  const addSlots = (slots: SlotItem[]) => {
    for (const s of slots) {
      const list = bySlotNode.get(s.nodeId);
      if (list) list.push(s);
      else bySlotNode.set(s.nodeId, [s]);
    }
  };
  // Each candidate's slots come from its own partition.
  const fromIndex = new Set<string>();
  const workers = new Map<string, Worker>();
  const readNodes = async (ids: Iterable<string>) => {
    const fresh = [...new Set(ids)].filter((id) => !workers.has(id));
    read.nodes += fresh.length;
    const loaded = await Promise.all(
      fresh.map(async (id) => {
        const [node, record, slots] = await Promise.all([
          getNode(ctx, id),
          getNodeModels(ctx, id),
          nodeSlots(ctx, id),
        ]);
        addSlots(slots);
        return [id, node, record] as const;
      }),
    );
    const stale: string[] = [];
    for (const [id, node, record] of loaded) {
      const w = node && toWorker(ctx, node, record, bySlotNode.get(id) ?? [], now);
      if (w) workers.set(id, w);
      if (
        fromIndex.has(id) &&
        (!w || !w.online || isCordoned(w.node) || w.running.length >= w.maxConcurrency)
      )
        stale.push(id);
    }
    await Promise.all(stale.map((id) => clearFree(ctx, id)));
  };
  const modelPage = async (model: string) => {
    read.lookups++;
    const { items } = await ctx.store.query<FreeRecord>(fleetKeys.nodeFreeModelPk(model), {
      limit: CANDIDATE_PAGE,
      index: 'gsi1',
    });
    for (const r of items) fromIndex.add(r.nodeId);
    return items.map((r) => r.nodeId);
  };

  const models = [...input.demand.keys()];
  const byModel = await Promise.all(models.map(modelPage));
  // Busy nodes running a queued model: the plan waits for them rather than switch another node.
  const running = await Promise.all(
    models.map((m) => {
      read.lookups++;
      return slotsRunning(ctx, m, CANDIDATE_PAGE);
    }),
  );
  const busy = [
    ...new Set(
      running
        .flat()
        .filter((s) => input.demand.has(s.model))
        .map((s) => s.nodeId),
    ),
  ].slice(0, CANDIDATE_PAGE);
  await readNodes([...byModel.flat(), ...busy, ...(input.include ?? [])]);

  // Tasks no free node with their model resident can take: they need a node that switches.
  let shortfall = 0;
  for (const [model, count] of input.demand) {
    let room = 0;
    for (const w of workers.values())
      if (w.online && !isCordoned(w.node) && w.resident.includes(model))
        room += Math.max(0, w.maxConcurrency - w.running.length);
    shortfall += Math.max(0, Math.min(count, CANDIDATE_PAGE) - room);
  }
  if (shortfall > 0) {
    // Shards in order: the same inputs read the same candidates. Runners that race for one node
    // lose a conditional slot claim, and the task goes in the next run.
    const free = await freeNodeIds(ctx, Math.min(CANDIDATE_PAGE, shortfall + 1));
    read.lookups += free.lookups;
    for (const id of free.ids) fromIndex.add(id);
    await readNodes(free.ids);
  }
  return { workers: [...workers.values()], read };
}
