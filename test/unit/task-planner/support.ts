// Shared helpers: an independent checker of placement plans, a round-based simulator and
// fast-check arbitraries. The checker re-derives every rule from the input instead of
// trusting the planner's indexes.

import fc from 'fast-check';
import {
  DEFAULT_AGING_PER_MINUTE,
  effectivePriority,
  isTimedOut,
  nodeMatches,
  planPlacements,
  type PlacementInput,
  type PlacementPlan,
  type SchedModel,
  type SchedNode,
  type SchedTask,
} from '../../../functions/task-planner/index.js';

interface SimNode {
  src: SchedNode;
  running: number;
  loaded: Set<string>;
}

function memOf(models: readonly SchedModel[]): Map<string, number> {
  return new Map(models.map((m) => [m.id, m.gpuMemoryMb]));
}

function loadedMb(loaded: Iterable<string>, mem: Map<string, number>): number {
  let s = 0;
  for (const m of loaded) s += mem.get(m) ?? 0;
  return s;
}

/** Could `task` start on `node` right now under the three rules (ignoring draining)? */
function fitsNow(task: SchedTask, n: SimNode, mem: Map<string, number>, headroomMb: number): boolean {
  if (!n.src.online || n.src.maxConcurrency <= 0 || !nodeMatches(n.src, task.requirements)) return false;
  if (n.loaded.has(task.model)) return n.running < n.src.maxConcurrency;
  const need = mem.get(task.model);
  return n.running === 0 && need !== undefined && need <= n.src.gpuMemoryTotalMb - headroomMb;
}

/**
 * Throws on any broken invariant: bookkeeping, offline nodes, concurrency, memory, switch rule,
 * drained nodes, and the strict priority rule (replayed step by step).
 */
export function checkPlan(input: PlacementInput, plan: PlacementPlan): void {
  const fail = (msg: string): never => {
    throw new Error(msg);
  };
  const aging = input.options?.agingPerMinute ?? DEFAULT_AGING_PER_MINUTE;
  const headroomMb = input.options?.memoryHeadroomMb ?? 0;
  const mem = memOf(input.models);
  const tasks = new Map(input.queue.map((t) => [t.id, t]));
  const eff = (t: SchedTask): number => effectivePriority(t, input.now, aging);
  const rankCmp = (a: SchedTask, b: SchedTask): number =>
    eff(b) - eff(a) || a.enqueuedAt - b.enqueuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  // Bookkeeping: every task reported exactly once; timeouts exactly the expired ones.
  const seen = new Set<string>();
  for (const id of [...plan.placements.map((p) => p.taskId), ...plan.timedOut, ...plan.stillQueued]) {
    if (seen.has(id)) fail(`task ${id} reported twice`);
    if (!tasks.has(id)) fail(`unknown task ${id}`);
    seen.add(id);
  }
  if (seen.size !== tasks.size) fail('some task missing from the plan');
  const expired = input.queue.filter((t) => isTimedOut(t, input.now)).map((t) => t.id);
  if (JSON.stringify(expired) !== JSON.stringify(plan.timedOut)) fail('timedOut mismatch');

  const state = new Map<string, SimNode>(
    input.nodes.map((n) => [n.id, { src: n, running: n.runningTasks, loaded: new Set(n.loadedModels) }]),
  );
  const reservedBy = new Map<string, SchedTask>();
  for (const d of plan.draining) {
    const n = state.get(d.nodeId) ?? fail(`drain on unknown node ${d.nodeId}`);
    if (!n.src.online) fail(`drain on offline node ${d.nodeId}`);
    if (reservedBy.has(d.nodeId)) fail(`node ${d.nodeId} drained twice`);
    const t = tasks.get(d.taskId) ?? fail(`drain for unknown task ${d.taskId}`);
    if (!plan.stillQueued.includes(t.id)) fail('drain for a task that is not waiting');
    reservedBy.set(d.nodeId, t);
  }

  const placedAt = new Map(plan.placements.map((p, i) => [p.taskId, i]));
  const waiting = input.queue.filter((t) => !isTimedOut(t, input.now));

  plan.placements.forEach((p, i) => {
    const task = tasks.get(p.taskId) as SchedTask;
    const n = state.get(p.nodeId) ?? fail(`placement on unknown node ${p.nodeId}`);
    if (i > 0 && rankCmp(tasks.get(plan.placements[i - 1]!.taskId)!, task) >= 0)
      fail('placements out of rank order');

    // Strict priority: nothing ranked above this task that is still waiting may fit anywhere
    // (nodes held for draining by a task ranked at or above the waiting one excepted).
    for (const w of waiting) {
      if (!(eff(w) > eff(task))) continue;
      const j = placedAt.get(w.id);
      if (j !== undefined && j < i) continue;
      for (const other of state.values()) {
        const holder = reservedBy.get(other.src.id);
        if (holder !== undefined && rankCmp(holder, w) <= 0) continue;
        if (fitsNow(w, other, mem, headroomMb))
          fail(`started ${task.id} (eff ${eff(task)}) while ${w.id} (eff ${eff(w)}) fits on ${other.src.id}`);
      }
    }

    if (!n.src.online) fail(`placed ${task.id} on offline node ${n.src.id}`);
    if (!nodeMatches(n.src, task.requirements)) fail(`requirements of ${task.id} not met on ${n.src.id}`);
    if (n.running >= n.src.maxConcurrency) fail(`node ${n.src.id} over maxConcurrency`);
    const holder = reservedBy.get(n.src.id);
    if (holder !== undefined && rankCmp(task, holder) >= 0)
      fail(`placed ${task.id} on node drained for ${holder.id}`);
    if (p.switchModel !== undefined) {
      if (n.running !== 0) fail(`switched ${n.src.id} while it runs tasks`);
      if (p.switchModel.to !== task.model) fail('switch to the wrong model');
      if (JSON.stringify(p.switchModel.from) !== JSON.stringify([...n.loaded].sort()))
        fail('switch.from mismatch');
      const need = mem.get(task.model) ?? fail(`switched to unknown model ${task.model}`);
      if (need > n.src.gpuMemoryTotalMb - headroomMb) fail(`model ${task.model} does not fit ${n.src.id}`);
      n.loaded = new Set([task.model]);
    } else if (!n.loaded.has(task.model)) fail(`${task.id} placed where ${task.model} is not resident`);
    n.running += 1;
    if (loadedMb(n.loaded, mem) > n.src.gpuMemoryTotalMb) fail(`node ${n.src.id} over GPU memory`);
  });

  // Waiting tasks ranked above no placement still must not fit at the end (nothing was placed after them).
  for (const id of plan.stillQueued) {
    const w = tasks.get(id) as SchedTask;
    for (const other of state.values()) {
      const holder = reservedBy.get(other.src.id);
      if (holder !== undefined && rankCmp(holder, w) <= 0) continue;
      if (fitsNow(w, other, mem, headroomMb)) fail(`${id} left queued but fits on ${other.src.id}`);
    }
  }
}

// ---- round-based simulation ----

interface Running {
  taskId: string;
  left: number;
}

export interface SimResult {
  rounds: number;
  placedRound: Map<string, number>;
  switches: number;
  queue: SchedTask[];
}

/**
 * Runs rounds of: plan, start placements, then every running task ages one round and
 * finishes when its duration is used up. `arrivals(round)` adds tasks; `duration(task)` in rounds.
 */
export function simulate(args: {
  nodes: SchedNode[];
  models: SchedModel[];
  arrivals: (round: number) => SchedTask[];
  duration: (task: SchedTask) => number;
  rounds: number;
  start?: number;
  roundMs?: number;
  options?: PlacementInput['options'];
  stopWhenEmptyAfter?: number;
  check?: boolean;
}): SimResult {
  const roundMs = args.roundMs ?? 10_000;
  const start = args.start ?? 1_000_000;
  const running = new Map<string, Running[]>(args.nodes.map((n) => [n.id, []]));
  let nodes = args.nodes.map((n) => ({ ...n, loadedModels: [...n.loadedModels] }));
  let queue: SchedTask[] = [];
  const placedRound = new Map<string, number>();
  let switches = 0;
  let r = 0;
  for (; r < args.rounds; r++) {
    queue.push(...args.arrivals(r));
    if (args.stopWhenEmptyAfter !== undefined && r >= args.stopWhenEmptyAfter && queue.length === 0) break;
    const input: PlacementInput = {
      nodes,
      models: args.models,
      queue,
      now: start + r * roundMs,
      options: args.options,
    };
    const plan = planPlacements(input);
    if (args.check ?? true) checkPlan(input, plan);
    const byId = new Map(queue.map((t) => [t.id, t]));
    const loaded = new Map(nodes.map((n) => [n.id, n.loadedModels]));
    for (const p of plan.placements) {
      if (p.switchModel) {
        switches += 1;
        loaded.set(p.nodeId, [p.switchModel.to]);
      }
      running.get(p.nodeId)!.push({ taskId: p.taskId, left: args.duration(byId.get(p.taskId)!) });
      placedRound.set(p.taskId, r);
    }
    const waiting = new Set(plan.stillQueued);
    queue = queue.filter((t) => waiting.has(t.id));
    for (const list of running.values()) {
      for (const job of list) job.left -= 1;
      const keep = list.filter((j) => j.left > 0);
      list.length = 0;
      list.push(...keep);
    }
    nodes = nodes.map((n) => ({
      ...n,
      loadedModels: loaded.get(n.id)!,
      runningTasks: running.get(n.id)!.length,
    }));
  }
  return { rounds: r, placedRound, switches, queue };
}

// ---- arbitraries ----

export const MODEL_SIZES = [2_000, 4_000, 8_000, 16_000] as const;

export const modelsArb: fc.Arbitrary<SchedModel[]> = fc
  .uniqueArray(fc.constantFrom('A', 'B', 'C', 'D'), { minLength: 1, maxLength: 4 })
  .chain((ids) =>
    fc.tuple(...ids.map((id) => fc.constantFrom(...MODEL_SIZES).map((gpuMemoryMb) => ({ id, gpuMemoryMb })))),
  );

export function nodesArb(
  models: SchedModel[],
  opts: { allOnline?: boolean; maxLength?: number } = {},
): fc.Arbitrary<SchedNode[]> {
  const mem = memOf(models);
  const node = fc
    .record({
      online: opts.allOnline ? fc.constant(true) : fc.integer({ min: 0, max: 4 }).map((x) => x > 0),
      gpuMemoryTotalMb: fc.constantFrom(8_000, 16_000, 24_000),
      wanted: fc.subarray(models.map((m) => m.id)),
      maxConcurrency: fc.integer({ min: 0, max: 4 }),
      busy: fc.integer({ min: 0, max: 4 }),
      gpuType: fc.option(fc.constantFrom('a100', 'orin'), { nil: undefined }),
    })
    .map((r) => {
      // Keep the initial state valid: resident models fit in memory.
      const loadedModels: string[] = [];
      let used = 0;
      for (const m of r.wanted) {
        const need = mem.get(m) ?? 0;
        if (used + need <= r.gpuMemoryTotalMb) {
          loadedModels.push(m);
          used += need;
        }
      }
      const runningTasks = loadedModels.length === 0 ? 0 : Math.min(r.busy, r.maxConcurrency);
      const out: Omit<SchedNode, 'id'> = {
        online: r.online,
        gpuMemoryTotalMb: r.gpuMemoryTotalMb,
        loadedModels,
        maxConcurrency: r.maxConcurrency,
        runningTasks,
      };
      if (r.gpuType !== undefined) out.gpuType = r.gpuType;
      return out;
    });
  return fc
    .array(node, { minLength: 1, maxLength: opts.maxLength ?? 8 })
    .map((list) => list.map((n, i): SchedNode => ({ id: `n${i}`, ...n })));
}

export const NOW = 10_000_000;

export function tasksArb(
  models: SchedModel[],
  opts: { timeouts?: boolean; requirements?: boolean; ghost?: boolean; maxLength?: number } = {},
): fc.Arbitrary<SchedTask[]> {
  const ids = models.map((m) => m.id);
  const modelArb = opts.ghost ? fc.constantFrom(...ids, 'ghost') : fc.constantFrom(...ids);
  const task = fc.record({
    model: modelArb,
    priority: fc.constantFrom(-1, 0, 1, 2),
    waitedMs: fc.integer({ min: 0, max: 900_000 }),
    timeoutMs: opts.timeouts
      ? fc.option(fc.integer({ min: 1, max: 900_000 }), { nil: undefined })
      : fc.constant(undefined),
    gpuType: opts.requirements
      ? fc.option(fc.constantFrom('a100', 'orin'), { freq: 3, nil: undefined })
      : fc.constant(undefined),
  });
  return fc.array(task, { maxLength: opts.maxLength ?? 30 }).map((list) =>
    list.map((t, i) => {
      const out: SchedTask = {
        id: `t${i}`,
        model: t.model,
        priority: t.priority,
        enqueuedAt: NOW - t.waitedMs,
      };
      if (t.timeoutMs !== undefined) out.timeoutMs = t.timeoutMs;
      if (t.gpuType !== undefined) out.requirements = { gpuType: t.gpuType };
      return out;
    }),
  );
}

export const optionsArb = fc.record({
  agingPerMinute: fc.constantFrom(0, 0.1, 1),
  drainAfterMs: fc.constantFrom(Number.POSITIVE_INFINITY, 0, 120_000),
  memoryHeadroomMb: fc.constantFrom(0, 0, 1_000),
});
