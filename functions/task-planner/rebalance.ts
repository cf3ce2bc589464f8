// Rebalance planner for `POST /cluster/rebalance`. Pure: returns operations, changes nothing.
//
// Every strategy first repairs over-committed nodes (resident models larger than GPU memory):
// idle models are evicted, unwanted and large ones first; an evicted model that is queued for
// and resident nowhere else moves to the online node with the most free memory.
//   memory_optimized (the doc's strategy): then unloads replicas nobody uses (no running task,
//     nothing queued), keeping one per model fleet-wide, and preloads queued-for models that are
//     resident nowhere into free memory.
//   load_balanced (ours): then gives every queued-for model a replica count proportional to its
//     share of the queue (at least one), using free memory first and evicting idle replicas of
//     models above their target only when it must. A model's last replica with queued tasks is
//     never surplus, so balancing never strands a queue.
// Models with running tasks are never unloaded unless `force`; offline nodes are never touched.
// "Fleet-wide" means the nodes given: the POST /cluster/rebalance route gives a window of the fleet
// (cluster/workers.ts planWorkers), so a plan never reads every node.

import { compareStrings } from './compare.js';
import type {
  RebalanceOperation,
  RebalanceOptions,
  RebalancePlan,
  RebalanceStrategy,
  SchedAssignment,
  SchedModel,
  SchedNode,
} from './types.js';

export const REBALANCE_STRATEGIES: readonly RebalanceStrategy[] = ['memory_optimized', 'load_balanced'];

export function isRebalanceStrategy(value: unknown): value is RebalanceStrategy {
  return typeof value === 'string' && (REBALANCE_STRATEGIES as readonly string[]).includes(value);
}

interface NodeState {
  readonly id: string;
  readonly capacityMb: number;
  readonly maxConcurrency: number;
  readonly loaded: Set<string>;
  /** Running tasks per resident model. */
  readonly busy: Map<string, number>;
  usedMb: number;
}

const byId = (a: { id: string }, b: { id: string }): number => compareStrings(a.id, b.id);

export function planRebalance(
  nodes: readonly SchedNode[],
  models: readonly SchedModel[],
  assignments: readonly SchedAssignment[],
  strategy: RebalanceStrategy,
  options: RebalanceOptions = {},
): RebalancePlan {
  if (!isRebalanceStrategy(strategy)) throw new RangeError(`unknown rebalance strategy: ${String(strategy)}`);
  const force = options.force ?? false;
  const headroomMb = options.memoryHeadroomMb ?? 0;
  const demandOf = (m: string): number => Math.max(0, options.demand?.[m] ?? 0);
  const memOf = new Map(models.map((m) => [m.id, m.gpuMemoryMb] as const));
  // Unknown models: memory unknown, so they are counted as 0 and never moved or preloaded.
  const mem = (m: string): number => memOf.get(m) ?? 0;

  const online: NodeState[] = nodes
    .filter((n) => n.online)
    .sort(byId)
    .map((n) => ({
      id: n.id,
      capacityMb: n.gpuMemoryTotalMb - headroomMb,
      maxConcurrency: n.maxConcurrency,
      loaded: new Set(n.loadedModels),
      busy: new Map(),
      usedMb: 0,
    }));
  const nodeById = new Map(online.map((n) => [n.id, n] as const));
  for (const a of assignments) {
    const n = nodeById.get(a.nodeId);
    if (n === undefined) continue;
    n.loaded.add(a.model); // a running task proves its model is resident
    n.busy.set(a.model, (n.busy.get(a.model) ?? 0) + 1);
  }
  const replicas = new Map<string, number>();
  for (const n of online) {
    for (const m of n.loaded) {
      n.usedMb += mem(m);
      replicas.set(m, (replicas.get(m) ?? 0) + 1);
    }
  }

  const operations: RebalanceOperation[] = [];
  const free = (n: NodeState): number => n.capacityMb - n.usedMb;
  const evictable = (n: NodeState, m: string): boolean => force || (n.busy.get(m) ?? 0) === 0;

  /** Drops `m` from `n`; returns how many running tasks that interrupts. */
  function removeResident(n: NodeState, m: string): number {
    const interrupted = n.busy.get(m) ?? 0;
    n.loaded.delete(m);
    n.busy.delete(m);
    n.usedMb -= mem(m);
    replicas.set(m, (replicas.get(m) ?? 0) - 1);
    return interrupted;
  }

  function unload(n: NodeState, m: string, reason: string): void {
    const interrupted = removeResident(n, m);
    const op: RebalanceOperation = { type: 'unload', nodeId: n.id, model: m, reason };
    if (interrupted > 0) op.interruptsTasks = interrupted;
    operations.push(op);
  }

  function addResident(n: NodeState, m: string): void {
    n.loaded.add(m);
    n.usedMb += mem(m);
    replicas.set(m, (replicas.get(m) ?? 0) + 1);
  }

  function load(n: NodeState, m: string, reason: string): void {
    addResident(n, m);
    operations.push({ type: 'load', nodeId: n.id, model: m, reason });
  }

  /** Online node without `m` with the most free memory that fits it (ties: id). */
  function roomiestFor(m: string, exclude?: NodeState): NodeState | undefined {
    let best: NodeState | undefined;
    for (const n of online) {
      if (n === exclude || n.maxConcurrency <= 0 || n.loaded.has(m) || free(n) < mem(m)) continue;
      if (best === undefined || free(n) > free(best)) best = n;
    }
    return best;
  }

  // Shared first phase: over-committed nodes.
  for (const n of online) {
    if (free(n) >= 0) continue;
    // Only models of known size count towards usedMb, so only they can relieve it.
    const victims = [...n.loaded]
      .filter((m) => memOf.has(m) && evictable(n, m))
      .sort(
        (a, b) =>
          Number(demandOf(a) > 0) - Number(demandOf(b) > 0) || mem(b) - mem(a) || compareStrings(a, b),
      );
    for (const m of victims) {
      if (free(n) >= 0) break;
      const target = demandOf(m) > 0 && (replicas.get(m) ?? 0) === 1 ? roomiestFor(m, n) : undefined;
      if (target === undefined) {
        unload(n, m, 'over-committed GPU memory');
        continue;
      }
      const interrupted = removeResident(n, m);
      addResident(target, m);
      const op: RebalanceOperation = {
        type: 'move',
        fromNodeId: n.id,
        toNodeId: target.id,
        model: m,
        reason: 'over-committed GPU memory',
      };
      if (interrupted > 0) op.interruptsTasks = interrupted;
      operations.push(op);
    }
  }

  const queuedModels = Object.keys(options.demand ?? {})
    .filter((m) => demandOf(m) > 0 && memOf.has(m))
    .sort((a, b) => demandOf(b) - demandOf(a) || compareStrings(a, b));

  if (strategy === 'memory_optimized') {
    for (const n of online) {
      for (const m of [...n.loaded].sort()) {
        if (demandOf(m) > 0 || (n.busy.get(m) ?? 0) > 0 || (replicas.get(m) ?? 0) <= 1) continue;
        unload(n, m, 'idle replica, nothing queued');
      }
    }
    for (const m of queuedModels) {
      if ((replicas.get(m) ?? 0) > 0) continue;
      const target = roomiestFor(m);
      if (target !== undefined) load(target, m, 'queued for, resident nowhere');
    }
  } else {
    const targets = replicaTargets(queuedModels, demandOf, online, mem);
    const surplus = (m: string): boolean => (replicas.get(m) ?? 0) > (targets.get(m) ?? 0);
    for (const m of queuedModels) {
      const want = targets.get(m) ?? 0;
      while ((replicas.get(m) ?? 0) < want) {
        const roomy = roomiestFor(m);
        if (roomy !== undefined) {
          load(roomy, m, 'below its share of the queue');
          continue;
        }
        // Evict surplus idle replicas from the node where the least memory has to go.
        let best: { node: NodeState; evict: string[]; evictedMb: number } | undefined;
        for (const n of online) {
          if (n.maxConcurrency <= 0 || n.loaded.has(m) || n.capacityMb < mem(m)) continue;
          const candidates = [...n.loaded]
            .filter((o) => surplus(o) && (n.busy.get(o) ?? 0) === 0)
            .sort((a, b) => mem(b) - mem(a) || compareStrings(a, b));
          const evict: string[] = [];
          let room = free(n);
          for (const o of candidates) {
            if (room >= mem(m)) break;
            evict.push(o);
            room += mem(o);
          }
          if (room < mem(m)) continue;
          const evictedMb = evict.reduce((s, o) => s + mem(o), 0);
          if (best === undefined || evictedMb < best.evictedMb) best = { node: n, evict, evictedMb };
        }
        if (best === undefined) break;
        for (const o of best.evict) unload(best.node, o, `surplus replica, making room for ${m}`);
        load(best.node, m, 'below its share of the queue');
      }
    }
  }

  const affected = new Set<string>();
  for (const op of operations) {
    if (op.type === 'move') {
      affected.add(op.fromNodeId);
      affected.add(op.toNodeId);
    } else affected.add(op.nodeId);
  }
  return { strategy, operations, affectedNodes: [...affected].sort() };
}

/**
 * Replicas per queued-for model: its share of the queue times the serving nodes, rounded, at
 * least one, at most the nodes it fits on. No global budget: nodes may hold several models.
 */
function replicaTargets(
  queued: readonly string[],
  demandOf: (m: string) => number,
  online: readonly NodeState[],
  mem: (m: string) => number,
): Map<string, number> {
  const serving = online.filter((n) => n.maxConcurrency > 0);
  const total = queued.reduce((s, m) => s + demandOf(m), 0);
  const targets = new Map<string, number>();
  for (const m of queued) {
    const fitsOn = serving.filter((n) => n.capacityMb >= mem(m)).length;
    targets.set(m, Math.min(fitsOn, Math.max(1, Math.round((serving.length * demandOf(m)) / total))));
  }
  return targets;
}

/** Apply a plan to node snapshots (for previews and tests); returns new objects. */
export function applyRebalance(
  nodes: readonly SchedNode[],
  operations: readonly RebalanceOperation[],
): SchedNode[] {
  const loaded = new Map(nodes.map((n) => [n.id, new Set(n.loadedModels)] as const));
  for (const op of operations) {
    if (op.type === 'load') loaded.get(op.nodeId)?.add(op.model);
    else if (op.type === 'unload') loaded.get(op.nodeId)?.delete(op.model);
    else {
      loaded.get(op.fromNodeId)?.delete(op.model);
      loaded.get(op.toNodeId)?.add(op.model);
    }
  }
  return nodes.map((n) => ({ ...n, loadedModels: [...(loaded.get(n.id) ?? [])].sort() }));
}
