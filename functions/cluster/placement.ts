import type { AppContext } from '../core/context.js';
import { planPlacements, type Placement, type SchedModel } from '../task-planner/index.js';
import { listModels } from './catalogue.js';
import { recordSample } from './metrics.js';
import { sweepSlots, type SlotItem } from './slots.js';
import { closeQueued, queueReader, toSchedTask, type TaskItem } from './tasks.js';
import { readLiveCounts, recountQueued } from './task-counts.js';
import { isCordoned } from '../nodes/nodes.js';
import { loadCandidates, toSchedNode, type Worker } from './workers.js';
import { cloudOnlyModels, loadModelBursts, modelBursts, withRentedNodes } from '../novita/model-burst.js';
import { applyPlacement } from './placement-apply.js';
import { closePastDue, repairSlots } from './placement-repair.js';
import { aloneInSecond } from './queue-position.js';

/**
 * The placement runner (`placement.run`): repairs held slots (tasks on offline nodes go back to
 * the queue, lost runs time out), plans with the scheduler module, and applies each placement
 * as slot claim → conditional queued→assigned write → task.run dispatch (placement-apply.ts). Every step is a
 * conditional write, so runners may overlap (Lambda, a retry, the schedule) and a task is still
 * placed once and a node never takes more tasks than its slots.
 */

/**
 * A run that started this long after a request answers for it (it saw the state that request
 * was about); the margin covers clock skew between the emitting and the running process.
 */
const COALESCE_MARGIN_MS = 25;

let lastRunStartedAt = 0;
/** For tests: forget the last run, so the next request runs. */
export const resetPlacementRunner = (): void => {
  lastRunStartedAt = 0;
};

export interface PlacementReport {
  /** A later run answered for this request. */
  skipped: boolean;
  /** False when no node had a free slot, so the queue was not read. */
  planned: boolean;
  placed: { taskId: string; nodeId: string; switchModel?: Placement['switchModel'] }[];
  switches: number;
  requeued: string[];
  timedOut: string[];
  failed: string[];
  releasedSlots: number;
  /** Placements another runner got to first. */
  lost: number;
  /** Of the tasks it read. */
  stillQueued: number;
  /** A quick run's reads for its candidates (lookups of the free-capacity index, nodes read). */
  candidates?: { lookups: number; nodes: number };
  /** Queued tasks the run read (a page at a time); absent when no node had a free slot. */
  queueRead?: number;
}

/** Queued tasks a run reads at once, in placement order. */
export const QUEUE_PAGE = 25;

const freeSlots = (workers: Worker[]): number =>
  workers.reduce(
    (n, w) => n + (toSchedNode(w).online ? Math.max(0, w.maxConcurrency - w.running.length) : 0),
    0,
  );

const emptyReport = (skipped: boolean): PlacementReport => ({
  skipped,
  planned: !skipped,
  placed: [],
  switches: 0,
  requeued: [],
  timedOut: [],
  failed: [],
  releasedSlots: 0,
  lost: 0,
  stillQueued: 0,
});

export interface RunOptions {
  /** `Date.now()` when the run was asked for; a run that started after it answers for it. */
  requestedAt?: number;
  /** Record the per-minute fleet sample (the scheduled run). */
  sample?: boolean;
  /** Check held slots a few index pages on (slots.ts sweepSlots), and fail the queued past their deadline (default: on the scheduled run). */
  fullRepair?: boolean;
  /** Nodes a quick run reads whatever the free-capacity index says (one that just went offline). */
  include?: string[];
}

export async function runPlacement(ctx: AppContext, options: RunOptions = {}): Promise<PlacementReport> {
  if (options.requestedAt !== undefined && lastRunStartedAt > options.requestedAt + COALESCE_MARGIN_MS)
    return emptyReport(true);
  lastRunStartedAt = Date.now();
  const report = emptyReport(false);
  const now = ctx.now();

  const full = options.fullRepair ?? options.sample ?? false;
  // The scheduled run checks a bounded batch of held slots, the next from a cursor (every slot
  // within a few minutes); every run reads its candidates' own slots (loadCandidates), so what it
  // reads does not grow with the tasks the fleet runs.
  const [swept, catalogue] = await Promise.all([full ? sweepSlots(ctx) : undefined, listModels(ctx)]);
  // Models with `cloud`: their rented nodes (read only when the catalogue has such a model).
  const bursts = await loadModelBursts(ctx, catalogue);
  // Queue timeouts from the deadlines past due (queue-deadlines.ts), not from the whole queue.
  if (full) report.timedOut.push(...(await closePastDue(ctx, now)));
  // The queue's counts (8 small records), for the sample and the rented nodes' waiting.
  const live = options.sample || bursts ? await readLiveCounts(ctx) : undefined;
  const queuedOf = (model: string) => live?.counts.queuedByModel.get(model) ?? 0;
  // Every run reads the queue a page at a time in placement order and then only candidates
  // (workers.ts loadCandidates), never the fleet: what it reads follows free capacity, not the
  // queue's depth.
  let workers: Worker[];
  const candidatesFor = async (tasks: TaskItem[], include?: string[]) => {
    const demand = new Map<string, number>();
    for (const t of tasks) demand.set(t.model, (demand.get(t.model) ?? 0) + 1);
    const c = await loadCandidates(ctx, { demand, ...(include ? { include } : {}) });
    report.candidates = {
      lookups: (report.candidates?.lookups ?? 0) + c.read.lookups,
      nodes: (report.candidates?.nodes ?? 0) + c.read.nodes,
    };
    return c.workers;
  };
  let reader = queueReader(ctx, QUEUE_PAGE);
  let queue = await reader.next();
  // The scheduled run reads the nodes holding the slots it checks (their own slots with them).
  const include = [
    ...new Set([
      ...(swept ?? []).map((s) => s.nodeId),
      ...(options.include ?? []),
      ...(bursts?.nodes.keys() ?? []),
    ]),
  ];
  workers = await candidatesFor(queue, include.length ? include : undefined);
  // The candidates' slots (each node's whole partition), and the swept ones of nodes that are gone.
  const read = new Set(workers.map((w) => w.id));
  const slots = [...workers.flatMap((w) => w.running), ...(swept ?? []).filter((s) => !read.has(s.nodeId))];
  const repair = await repairSlots(ctx, slots, new Map(workers.map((w) => [w.id, w] as const)), now, full);
  // Nodes whose slots the repair saw: their running tasks are what it left live.
  const repaired = new Set([...workers.map((w) => w.id), ...slots.map((s) => s.nodeId)]);
  if (repair.requeued.length) {
    // Tasks back in the queue need candidates of their own (their node just left).
    reader = queueReader(ctx, QUEUE_PAGE);
    queue = await reader.next();
    const requeued = new Set(repair.requeued);
    const known = new Set(workers.map((w) => w.id));
    const more = await candidatesFor(queue.filter((t) => requeued.has(t.taskId)));
    workers = [...workers, ...more.filter((w) => !known.has(w.id))];
  }
  report.requeued = repair.requeued;
  report.failed = repair.failed;
  report.releasedSlots = repair.released;

  const bySlotNode = new Map<string, SlotItem[]>();
  for (const s of repair.live) {
    const list = bySlotNode.get(s.nodeId);
    if (list) list.push(s);
    else bySlotNode.set(s.nodeId, [s]);
  }
  const withRunning = (ws: Worker[]) =>
    ws.map((w) => (repaired.has(w.id) ? { ...w, running: bySlotNode.get(w.id) ?? [] } : w));
  workers = withRunning(workers);
  const modelById = new Map(catalogue.map((m) => [m.id, m] as const));
  // What a cloud model waits with (modelBursts reads only theirs): its tasks left queued, or its
  // queued count less what this run placed or failed, the tasks it did not read included.
  const waiting = (left: TaskItem[], gone: TaskItem[]) => {
    const out = countByModel(left);
    const goneOf = countByModel(gone);
    for (const m of catalogue)
      if (m.cloud) out.set(m.id, Math.max(out.get(m.id) ?? 0, queuedOf(m.id) - (goneOf.get(m.id) ?? 0)));
    return out;
  };
  const finish = async (busyNodes: Set<string>, left: TaskItem[], gone: TaskItem[]) => {
    await modelBursts(ctx, bursts, { catalogue, waiting: waiting(left, gone), busyNodes });
    if (!options.sample || !live) return;
    await recordSample(ctx, catalogue, live.counts).catch((error: unknown) =>
      ctx.logger.warn('sample failed', { error: error as Error }),
    );
    // A run that moved the queue leaves the recount to a quiet minute.
    if (!report.placed.length && !report.requeued.length && !report.timedOut.length)
      await recountQueued(ctx, live.records).catch((error: unknown) =>
        ctx.logger.warn('task recount failed', { error: error as Error }),
      );
  };

  // Nothing can start without a free slot. Queue timeouts are then the deadline records' (above),
  // or the next run with capacity that reads the task.
  if (!workers.some((w) => w.online && w.running.length < w.maxConcurrency)) {
    report.planned = false;
    await finish(new Set(repair.live.map((s) => s.nodeId)), queue, []);
    return report;
  }
  const models: SchedModel[] = catalogue.map((m) => ({ id: m.id, gpuMemoryMb: m.gpuMemoryMb }));
  // Cloud-only models' tasks go to their rented nodes only (withRentedNodes).
  const cloudOnly = cloudOnlyModels(catalogue);
  const planAll = () => {
    const fleet = planPlacements({
      nodes: workers.map(toSchedNode),
      models,
      queue: queue.filter((t) => !cloudOnly.has(t.model)).map(toSchedTask),
      now,
    });
    const plan = bursts
      ? withRentedNodes(fleet, {
          bursts,
          workers,
          models,
          cloudOnly: queue.filter((t) => cloudOnly.has(t.model)).map(toSchedTask),
          tasks: new Map(queue.map((t) => [t.taskId, toSchedTask(t)] as const)),
          now,
        })
      : fleet;
    return { fleet, plan };
  };
  // A rented node with a free slot wants more of the queue while its model's count (the counters)
  // says more of its tasks are queued than were read.
  const rentedWant = (plan: { placements: Placement[] }) => {
    if (!bursts) return false;
    const read = countByModel(queue);
    const placedOn = new Map<string, number>();
    for (const p of plan.placements) placedOn.set(p.nodeId, (placedOn.get(p.nodeId) ?? 0) + 1);
    return workers.some((w) => {
      const model = bursts.nodes.get(w.id);
      return (
        model !== undefined &&
        w.online &&
        !isCordoned(w.node) &&
        w.running.length + (placedOn.get(w.id) ?? 0) < w.maxConcurrency &&
        queuedOf(model) > (read.get(model) ?? 0)
      );
    });
  };
  let { fleet: fleetPlan, plan } = planAll();
  // The plan of a prefix of the queue places its tasks as the plan of the whole queue would (the
  // planner serves in this order and a decision only uses capacity up): read on only while the
  // plan leaves a candidate's slot free. Tasks no free slot fits (a model or GPU type nobody free
  // serves) keep it reading, as far as the whole queue: none is passed over.
  let free = freeSlots(workers);
  while (!reader.done && (fleetPlan.placements.length < free || rentedWant(plan))) {
    const more = await reader.next();
    if (!more.length) break;
    queue = [...queue, ...more];
    const known = new Set(workers.map((w) => w.id));
    const seen = new Set(queue.slice(0, -more.length).map((t) => t.model));
    const fresh = more.filter((t) => !seen.has(t.model));
    if (fresh.length) {
      workers = [...workers, ...withRunning((await candidatesFor(fresh)).filter((w) => !known.has(w.id)))];
      free = freeSlots(workers);
    }
    ({ fleet: fleetPlan, plan } = planAll());
  }
  report.queueRead = queue.length;
  const alone = aloneInSecond(queue, reader.done);
  const workerById = new Map(workers.map((w) => [w.id, w] as const));
  const taskById = new Map(queue.map((t) => [t.taskId, t] as const));
  report.stillQueued = plan.stillQueued.length;

  for (const id of plan.timedOut) {
    const t = taskById.get(id)!;
    if (await closeQueued(ctx, id, 'failed', `timed out after ${t.timeoutSeconds} s in the queue`))
      report.timedOut.push(id);
  }

  // Nodes apply their placements at once, each node's in plan order: every step is a conditional
  // write of its own task and slot, so only the wait for the store overlaps.
  const byNode = new Map<string, Placement[]>();
  for (const p of plan.placements) {
    const list = byNode.get(p.nodeId);
    if (list) list.push(p);
    else byNode.set(p.nodeId, [p]);
  }
  await Promise.all(
    [...byNode.values()].map(async (ps) => {
      for (const p of ps) {
        const task = taskById.get(p.taskId)!;
        const worker = workerById.get(p.nodeId)!;
        const { outcome, switched } = await applyPlacement(ctx, {
          p,
          task,
          worker,
          spec: modelById.get(task.model),
          now,
          aloneInSecond: alone.has(task.taskId),
        });
        if (switched) report.switches++;
        if (outcome === 'placed')
          report.placed.push({
            taskId: task.taskId,
            nodeId: p.nodeId,
            ...(p.switchModel ? { switchModel: p.switchModel } : {}),
          });
        else if (outcome === 'lost') report.lost++;
        else if (outcome === 'failed') report.failed.push(task.taskId);
      }
    }),
  );

  await finish(
    new Set(workers.filter((w) => w.running.length > 0).map((w) => w.id)),
    plan.stillQueued.map((id) => taskById.get(id)!),
    [...plan.placements.map((p) => taskById.get(p.taskId)!), ...plan.timedOut.map((id) => taskById.get(id)!)],
  );
  if (report.placed.length || report.requeued.length || report.timedOut.length || report.failed.length) {
    ctx.logger.info('placement run', {
      placed: report.placed.length,
      switches: report.switches,
      requeued: report.requeued.length,
      timedOut: report.timedOut.length,
      failed: report.failed.length,
      lost: report.lost,
      stillQueued: report.stillQueued,
    });
  }
  return report;
}

const countByModel = (tasks: Pick<TaskItem, 'model'>[]): Map<string, number> => {
  const out = new Map<string, number>();
  for (const t of tasks) out.set(t.model, (out.get(t.model) ?? 0) + 1);
  return out;
};
