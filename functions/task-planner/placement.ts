// Placement planner for the shared inference queue. Pure: the result depends only on the input.
//
// Per task, in effective-priority order (base priority + aging, then FIFO, then id):
//   1. an online node with the model resident and a free slot, least busy first
//      (running / maxConcurrency, then more free slots, then node id);
//   2. else switch the model onto an idle eligible node whose GPU memory fits it;
//   3. else it stays queued.
// Switch rule: only a node with zero running tasks is switched. Running tasks are not tracked
// per model, and a node running tasks of the wanted model with a free slot is already rule 1,
// so "idle" is exactly "no running tasks of another model". A switch unloads every resident
// model, so only the target model's memory has to fit.
//
// Strict priority holds by construction: decisions only consume capacity, so a task that found
// no node when its turn came finds none later in the same plan, and every lower task comes later.
// Because of that monotonicity a (model, requirements) pair that failed once is skipped for the
// rest of the plan, which keeps the cost near O(tasks log nodes) instead of O(tasks x nodes).

import { compareStrings } from './compare.js';
import { MinHeap } from './heap.js';
import { DEFAULT_AGING_PER_MINUTE, effectivePriority, isTimedOut } from './priority.js';
import type {
  DrainReservation,
  Placement,
  PlacementInput,
  PlacementPlan,
  SchedNode,
  SchedRequirements,
  SchedTask,
} from './types.js';

export const DEFAULT_DRAIN_AFTER_MS = 120_000;

interface NodeState {
  readonly id: string;
  /** Rank by id: tie-breaks do not depend on input order. */
  readonly order: number;
  readonly src: SchedNode;
  readonly online: boolean;
  /** Total GPU memory minus headroom. */
  readonly capacityMb: number;
  readonly max: number;
  running: number;
  loaded: Set<string>;
  /** Bumped on every change; heap entries carrying an older version are stale. */
  version: number;
  reservedFor: string | null;
  /** Switch preference, fixed per plan: 0 empty, 1 only models nobody queued for, 2 otherwise. */
  readonly idleClass: number;
}

interface BusyEntry {
  readonly node: NodeState;
  readonly version: number;
  readonly ratio: number;
  readonly spare: number;
}

interface LoadedIndex {
  readonly model: string;
  readonly req: SchedRequirements | undefined;
  readonly heap: MinHeap<BusyEntry>;
}

const lessBusy = (a: BusyEntry, b: BusyEntry): boolean =>
  a.ratio !== b.ratio
    ? a.ratio < b.ratio
    : a.spare !== b.spare
      ? a.spare > b.spare
      : a.node.order < b.node.order;

// Empty nodes first (nothing to unload), then nodes whose models nobody waits for, then best fit
// so big GPUs stay free for big models.
const betterSwitchTarget = (a: NodeState, b: NodeState): boolean =>
  a.idleClass !== b.idleClass
    ? a.idleClass < b.idleClass
    : a.capacityMb !== b.capacityMb
      ? a.capacityMb < b.capacityMb
      : a.order < b.order;

function busyEntry(node: NodeState): BusyEntry {
  return { node, version: node.version, ratio: node.running / node.max, spare: node.max - node.running };
}

export function requirementsKey(req: SchedRequirements | undefined): string {
  if (req === undefined) return '';
  const labels = req.labels;
  let key = req.gpuType === undefined ? '' : `t=${req.gpuType}`;
  if (labels !== undefined) {
    for (const k of Object.keys(labels).sort()) key += `\u0001${k}=${labels[k]}`;
  }
  return key;
}

export function nodeMatches(node: SchedNode, req: SchedRequirements | undefined): boolean {
  if (req === undefined) return true;
  if (req.gpuType !== undefined && node.gpuType !== req.gpuType) return false;
  if (req.labels !== undefined) {
    for (const [k, v] of Object.entries(req.labels)) {
      if (node.labels?.[k] !== v) return false;
    }
  }
  return true;
}

interface RankedTask {
  readonly task: SchedTask;
  readonly eff: number;
  readonly enqueuedAt: number;
}

/** Effective priority first, then FIFO, then id. */
function compareRank(a: RankedTask, b: RankedTask): number {
  if (a.eff !== b.eff) return b.eff - a.eff;
  if (a.enqueuedAt !== b.enqueuedAt) return a.enqueuedAt - b.enqueuedAt;
  return compareStrings(a.task.id, b.task.id);
}

export function planPlacements(input: PlacementInput): PlacementPlan {
  const { now, options = {} } = input;
  if (!Number.isFinite(now)) throw new RangeError('now must be a finite epoch-ms number');
  const aging = options.agingPerMinute ?? DEFAULT_AGING_PER_MINUTE;
  const drainAfterMs = options.drainAfterMs ?? DEFAULT_DRAIN_AFTER_MS;
  const headroomMb = options.memoryHeadroomMb ?? 0;

  const modelMem = new Map<string, number>();
  for (const m of input.models) modelMem.set(m.id, m.gpuMemoryMb);

  // Timeouts first; what is left is the demand used to rank switch targets.
  const timedOut: string[] = [];
  const live: RankedTask[] = [];
  const demand = new Map<string, number>();
  const taskIds = new Set<string>();
  for (const task of input.queue) {
    if (taskIds.has(task.id)) throw new RangeError(`duplicate task id: ${task.id}`);
    taskIds.add(task.id);
    if (isTimedOut(task, now)) {
      timedOut.push(task.id);
      continue;
    }
    live.push({ task, eff: effectivePriority(task, now, aging), enqueuedAt: task.enqueuedAt });
    demand.set(task.model, (demand.get(task.model) ?? 0) + 1);
  }
  live.sort(compareRank);

  const byId = [...input.nodes].sort((a, b) => compareStrings(a.id, b.id));
  for (let i = 1; i < byId.length; i++) {
    if (byId[i]!.id === byId[i - 1]!.id) throw new RangeError(`duplicate node id: ${byId[i]!.id}`);
  }
  const nodes: NodeState[] = byId.map((src, order) => {
    let idleClass = 0;
    for (const m of src.loadedModels) idleClass = Math.max(idleClass, (demand.get(m) ?? 0) > 0 ? 2 : 1);
    return {
      id: src.id,
      order,
      src,
      online: src.online,
      capacityMb: src.gpuMemoryTotalMb - headroomMb,
      max: src.maxConcurrency,
      running: src.runningTasks,
      loaded: new Set(src.loadedModels),
      version: 0,
      reservedFor: null,
      idleClass,
    };
  });
  const usable = (n: NodeState): boolean => n.online && n.max > 0;
  const onlineCount = nodes.reduce((c, n) => c + (n.online ? 1 : 0), 0);
  const maxDraining = options.maxDrainingNodes ?? Math.max(1, Math.floor(onlineCount / 10));

  // model -> usable nodes with it resident (any load).
  const residentOn = new Map<string, Set<NodeState>>();
  for (const n of nodes) {
    if (!usable(n)) continue;
    for (const m of n.loaded) {
      let set = residentOn.get(m);
      if (set === undefined) residentOn.set(m, (set = new Set()));
      set.add(n);
    }
  }

  // Built lazily per (model, requirements) and per (memory, requirements): only shapes present in the queue pay.
  const loadedIndexes = new Map<string, LoadedIndex>();
  const loadedIndexesByModel = new Map<string, LoadedIndex[]>();
  const idleIndexes = new Map<string, MinHeap<NodeState>>();

  function loadedIndex(key: string, model: string, req: SchedRequirements | undefined): LoadedIndex {
    let idx = loadedIndexes.get(key);
    if (idx !== undefined) return idx;
    idx = { model, req, heap: new MinHeap(lessBusy) };
    for (const n of residentOn.get(model) ?? []) {
      if (n.reservedFor === null && n.running < n.max && nodeMatches(n.src, req)) idx.heap.push(busyEntry(n));
    }
    loadedIndexes.set(key, idx);
    const list = loadedIndexesByModel.get(model);
    if (list === undefined) loadedIndexesByModel.set(model, [idx]);
    else list.push(idx);
    return idx;
  }

  function takeLoaded(idx: LoadedIndex): NodeState | undefined {
    const heap = idx.heap;
    for (;;) {
      const e = heap.peek();
      if (e === undefined) return undefined;
      const n = e.node;
      if (n.reservedFor !== null || n.running >= n.max || !n.loaded.has(idx.model)) heap.pop();
      else if (e.version !== n.version)
        heap.replaceTop(busyEntry(n)); // keys only grow: refresh and retry
      else return n;
    }
  }

  function idleIndex(memMb: number, reqKey: string, req: SchedRequirements | undefined): MinHeap<NodeState> {
    const key = `${memMb}\u0000${reqKey}`;
    let heap = idleIndexes.get(key);
    if (heap !== undefined) return heap;
    heap = new MinHeap(betterSwitchTarget);
    for (const n of nodes) {
      if (
        usable(n) &&
        n.running === 0 &&
        n.reservedFor === null &&
        n.capacityMb >= memMb &&
        nodeMatches(n.src, req)
      )
        heap.push(n);
    }
    idleIndexes.set(key, heap);
    return heap;
  }

  function takeIdle(heap: MinHeap<NodeState>): NodeState | undefined {
    for (;;) {
      const n = heap.peek();
      if (n === undefined) return undefined;
      if (n.running !== 0 || n.reservedFor !== null) heap.pop();
      else return n;
    }
  }

  function switchTo(n: NodeState, model: string): string[] {
    const from = [...n.loaded].sort();
    for (const m of from) residentOn.get(m)?.delete(n);
    n.loaded = new Set([model]);
    let set = residentOn.get(model);
    if (set === undefined) residentOn.set(model, (set = new Set()));
    set.add(n);
    return from;
  }

  function start(n: NodeState): void {
    n.running += 1;
    n.version += 1;
  }

  // A blocked task may hold one node for draining only if its model is resident nowhere it may run:
  // otherwise a slot on such a node frees up and the task, ranked ahead of lower ones, gets it.
  function tryDrain(task: SchedTask, memMb: number): DrainReservation | undefined {
    for (const n of residentOn.get(task.model) ?? []) {
      if (nodeMatches(n.src, task.requirements)) return undefined;
    }
    let best: NodeState | undefined;
    for (const n of nodes) {
      if (
        !usable(n) ||
        n.reservedFor !== null ||
        n.capacityMb < memMb ||
        !nodeMatches(n.src, task.requirements)
      )
        continue;
      if (
        best === undefined ||
        n.running < best.running ||
        (n.running === best.running && n.order < best.order)
      )
        best = n;
    }
    if (best === undefined) return undefined;
    best.reservedFor = task.id;
    best.version += 1;
    return { nodeId: best.id, taskId: task.id, model: task.model };
  }

  const placements: Placement[] = [];
  const stillQueued: string[] = [];
  const draining: DrainReservation[] = [];
  const blocked = new Set<string>();
  const drainSettled = new Set<string>();

  for (const { task } of live) {
    const reqKey = requirementsKey(task.requirements);
    const key = reqKey === '' ? task.model : `${task.model}\u0000${reqKey}`;
    const memMb = modelMem.get(task.model);

    if (!blocked.has(key)) {
      const resident = takeLoaded(loadedIndex(key, task.model, task.requirements));
      if (resident !== undefined) {
        start(resident);
        placements.push({ taskId: task.id, nodeId: resident.id });
        continue;
      }
      // Unknown model: its memory is unknown, so it can only run where it is already resident.
      const idle = memMb === undefined ? undefined : takeIdle(idleIndex(memMb, reqKey, task.requirements));
      // An idle node already holding the model was offered by rule 1, so this is always a real switch.
      if (idle !== undefined) {
        const from = switchTo(idle, task.model);
        start(idle);
        placements.push({ taskId: task.id, nodeId: idle.id, switchModel: { from, to: task.model } });
        for (const idx of loadedIndexesByModel.get(task.model) ?? []) {
          if (idle.running < idle.max && nodeMatches(idle.src, idx.req)) idx.heap.push(busyEntry(idle));
        }
        continue;
      }
      blocked.add(key);
    }

    stillQueued.push(task.id);
    if (
      memMb !== undefined &&
      !drainSettled.has(key) &&
      draining.length < maxDraining &&
      now - task.enqueuedAt >= drainAfterMs
    ) {
      drainSettled.add(key); // one reservation (or one failed search) per shape per plan
      const reservation = tryDrain(task, memMb);
      if (reservation !== undefined) draining.push(reservation);
    }
  }

  return { placements, timedOut, stillQueued, draining };
}
