import type { ScheduleSpec } from '../ports/scheduler.js';
import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import { planPlacements, type Placement, type SchedModel } from '../task-planner/index.js';
import { dispatchCommand } from '../nodes/commands.js';
import type { Command } from '../../protocol/commands.js';
import { listModels, modelInstanceId, serverSpec, type ModelSpec } from './catalogue.js';
import { recordSample } from './metrics.js';
import { countModelSwitch, countPlacement } from '../observability/counters.js';
import { claimSlot, freeSlots, heldSlots, releaseSlot, type SlotItem } from './slots.js';
import {
  closeQueued,
  getTask,
  markAssigned,
  markFinished,
  queuedTasks,
  requeue,
  runDeadlineMs,
  runTimeoutFor,
  setRunCommand,
  toSchedTask,
  type TaskItem,
} from './tasks.js';
import { loadCandidates, setNodeModels, toSchedNode, type Worker } from './workers.js';
import { clearFree } from '../nodes/node-records.js';
import { cloudOnlyModels, loadModelBursts, modelBursts, withRentedNodes } from '../novita/model-burst.js';

/**
 * The placement runner (`placement.run`): repairs held slots (tasks on offline nodes go back to
 * the queue, lost runs time out), plans with the scheduler module, and applies each placement
 * as slot claim → conditional queued→assigned write → task.run dispatch. Every step is a
 * conditional write, so runners may overlap (Lambda, a retry, the schedule) and a task is still
 * placed once and a node never takes more tasks than its slots.
 */

const counted = (ctx: AppContext, outcome: Parameters<typeof countPlacement>[1]) =>
  countPlacement(ctx, outcome).catch((error: unknown) =>
    ctx.logger.warn('placement count failed', { error: error as Error }),
  );

export const PLACEMENT_SCHEDULE = 'placement-run';

/** A slot claimed by a runner that died before assigning the task is freed after this. */
const CLAIM_GRACE_MS = 30_000;
/** A task cancelled while running keeps its slot until the agent confirms, at most this long. */
const CANCEL_GRACE_MS = 30_000;
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
  stillQueued: number;
  /** A quick run's reads for its candidates (lookups of the free-capacity index, nodes read). */
  candidates?: { lookups: number; nodes: number };
}

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

/** The safety net: a run every minute catches lost events, timeouts and silent nodes (in APP_SCHEDULES). */
export const PLACEMENT_SCHEDULES: ScheduleSpec[] = [
  {
    name: PLACEMENT_SCHEDULE,
    expression: 'rate(1 minute)',
    payload: JSON.stringify({ type: 'placement.run', reason: 'schedule', sample: true }),
    description: 'Places queued inference tasks, requeues tasks of offline nodes, records a fleet sample',
  },
];

export async function ensurePlacementSchedule(ctx: AppContext): Promise<void> {
  for (const spec of PLACEMENT_SCHEDULES) await ctx.scheduler.upsert(spec);
}

/** The request the model server gets for this task, by the model's protocol. */
export function modelRequest(model: ModelSpec, task: TaskItem): { path: string; body: unknown } {
  // Both protocols take the task's parameters as the JSON body; they differ in what comes back
  // (vision-generate: `images: [{name, contentType, base64}]`, which the agent turns into files).
  return { path: model.path, body: { model: model.id, ...task.parameters } };
}

async function tryDispatch(ctx: AppContext, nodeId: string, command: Command): Promise<string | undefined> {
  try {
    return await dispatchCommand(ctx, nodeId, command);
  } catch (error) {
    ctx.logger.warn('dispatch failed', { nodeId, type: command.type, error: error as Error });
    return undefined;
  }
}

interface Repair {
  live: SlotItem[];
  requeued: string[];
  failed: string[];
  released: number;
}

/**
 * Checks held slots against their tasks and nodes. A quick pass reads only the tasks of offline
 * nodes and of slots past their deadline; the full pass (the scheduled run) reads every one,
 * which also frees slots a crashed writer left behind.
 */
async function repairSlots(
  ctx: AppContext,
  slots: SlotItem[],
  workers: Map<string, Worker>,
  now: number,
  full: boolean,
): Promise<Repair> {
  const out: Repair = { live: [], requeued: [], failed: [], released: 0 };
  const release = async (s: SlotItem) => {
    if (await releaseSlot(ctx, s.nodeId, s.slot, s.taskId)) out.released++;
  };
  for (const s of slots) {
    const known = workers.get(s.nodeId);
    // A quick pass reads only candidates: a node it did not read counts as online (its going
    // offline runs a pass that reads it; the scheduled pass reads every node).
    const online = known ? known.online : !full;
    if (!full && online && (s.deadlineMs === undefined || now <= s.deadlineMs)) {
      out.live.push(s);
      continue;
    }
    const task = await getTask(ctx, s.taskId);
    const onThisSlot = task !== undefined && task.nodeId === s.nodeId && task.slot === s.slot;
    if (!onThisSlot || task.status === 'queued') {
      // Claimed by a runner that has not written the task yet, or that died doing so.
      if (now - s.claimedAtMs > CLAIM_GRACE_MS) await release(s);
      else out.live.push(s);
      continue;
    }
    if (task.status === 'assigned' || task.status === 'running') {
      if (!online) {
        if (await requeue(ctx, task, s.nodeId, 'node offline')) {
          out.requeued.push(task.taskId);
          await release(s);
          // Delivered if the node comes back, so it does not finish work nobody waits for.
          await tryDispatch(ctx, s.nodeId, { type: 'task.cancel', taskId: task.taskId });
        }
        continue;
      }
      const deadline = runDeadlineMs(task);
      if (deadline !== undefined && now > deadline) {
        if (
          await markFinished(ctx, task, s.nodeId, {
            status: 'failed',
            error: 'timed out: the node reported no result',
          })
        ) {
          out.failed.push(task.taskId);
          await release(s);
          await tryDispatch(ctx, s.nodeId, { type: 'task.cancel', taskId: task.taskId });
        }
        continue;
      }
      out.live.push(s);
      continue;
    }
    // Terminal. Cancelled while running: hold the GPU until the agent confirms, or the grace ends.
    if (task.status === 'cancelled' && online && now - (task.completedAtMs ?? 0) < CANCEL_GRACE_MS) {
      out.live.push(s);
      continue;
    }
    await release(s);
  }
  return out;
}

export interface RunOptions {
  /** `Date.now()` when the run was asked for; a run that started after it answers for it. */
  requestedAt?: number;
  /** Record the per-minute fleet sample (the scheduled run). */
  sample?: boolean;
  /** Read the task of every held slot (default: on the scheduled run). */
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
  const [slots, catalogue] = await Promise.all([heldSlots(ctx), listModels(ctx)]);
  // Models with `cloud`: their rented nodes (read only when the catalogue has such a model).
  const bursts = await loadModelBursts(ctx, catalogue);
  // Every run reads the queue and then only candidates (workers.ts loadCandidates), never the fleet.
  let queue: TaskItem[];
  let workers: Worker[];
  const candidatesFor = async (tasks: TaskItem[], include?: string[]) => {
    const demand = new Map<string, number>();
    for (const t of tasks) demand.set(t.model, (demand.get(t.model) ?? 0) + 1);
    const c = await loadCandidates(ctx, { demand, slots, ...(include ? { include } : {}) });
    report.candidates = {
      lookups: (report.candidates?.lookups ?? 0) + c.read.lookups,
      nodes: (report.candidates?.nodes ?? 0) + c.read.nodes,
    };
    return c.workers;
  };
  queue = await queuedTasks(ctx);
  // The scheduled run checks every held slot, so it reads the nodes holding them (the fleet's work,
  // not its size); the sweep repairs the indexes and aggregates the fleet for the sample.
  const include = [
    ...new Set([
      ...(full ? slots.map((s) => s.nodeId) : []),
      ...(options.include ?? []),
      ...(bursts?.nodes.keys() ?? []),
    ]),
  ];
  workers = await candidatesFor(queue, include.length ? include : undefined);
  const repair = await repairSlots(ctx, slots, new Map(workers.map((w) => [w.id, w] as const)), now, full);
  if (repair.requeued.length) {
    // Tasks back in the queue need candidates of their own (their node just left).
    queue = await queuedTasks(ctx);
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
  workers = workers.map((w) => ({ ...w, running: bySlotNode.get(w.id) ?? [] }));
  const workerById = new Map(workers.map((w) => [w.id, w] as const));
  const modelById = new Map(catalogue.map((m) => [m.id, m] as const));

  // Nothing can start without a free slot. Queue timeouts are then enforced by the next run with
  // capacity, or the scheduled one.
  if (!full && !workers.some((w) => w.online && w.running.length < w.maxConcurrency)) {
    report.planned = false;
    await modelBursts(ctx, bursts, {
      catalogue,
      waiting: countByModel(queue),
      busyNodes: new Set(repair.live.map((s) => s.nodeId)),
    });
    return report;
  }
  const taskById = new Map(queue.map((t) => [t.taskId, t] as const));
  const models: SchedModel[] = catalogue.map((m) => ({ id: m.id, gpuMemoryMb: m.gpuMemoryMb }));
  // Cloud-only models' tasks go to their rented nodes only (withRentedNodes).
  const cloudOnly = cloudOnlyModels(catalogue);
  const fleetPlan = planPlacements({
    nodes: workers.map(toSchedNode),
    models,
    queue: queue.filter((t) => !cloudOnly.has(t.model)).map(toSchedTask),
    now,
  });
  const plan = bursts
    ? withRentedNodes(fleetPlan, {
        bursts,
        workers,
        models,
        cloudOnly: queue.filter((t) => cloudOnly.has(t.model)).map(toSchedTask),
        tasks: new Map(queue.map((t) => [t.taskId, toSchedTask(t)] as const)),
        now,
      })
    : fleetPlan;
  report.stillQueued = plan.stillQueued.length;

  for (const id of plan.timedOut) {
    const t = taskById.get(id)!;
    if (await closeQueued(ctx, id, 'failed', `timed out after ${t.timeoutSeconds} s in the queue`))
      report.timedOut.push(id);
  }

  for (const p of plan.placements) {
    const task = taskById.get(p.taskId)!;
    const worker = workerById.get(p.nodeId)!;
    const deadlineMs = runDeadlineMs({ ...task, assignedAtMs: now });
    const slot = await claimSlot(
      ctx,
      p.nodeId,
      freeSlots(worker.maxConcurrency, worker.running),
      task.taskId,
      task.model,
      deadlineMs,
    );
    if (slot === undefined) {
      report.lost++;
      await counted(ctx, 'lost');
      continue;
    }
    const held: SlotItem = {
      ...taskQueueKeys.nodeSlot(p.nodeId, slot),
      nodeId: p.nodeId,
      slot,
      taskId: task.taskId,
      model: task.model,
      claimedAtMs: now,
      deadlineMs,
    };
    worker.running = [...worker.running, held];
    if (worker.running.length >= worker.maxConcurrency) await clearFree(ctx, p.nodeId);
    const assigned = await markAssigned(ctx, task.taskId, p.nodeId, slot, p.switchModel !== undefined);
    if (!assigned) {
      await releaseSlot(ctx, p.nodeId, slot, task.taskId);
      worker.running = worker.running.filter((s) => s.slot !== slot);
      report.lost++;
      continue;
    }
    const spec = modelById.get(task.model);
    if (!spec) {
      // Declared when submitted, removed from the catalogue since: nothing can serve it.
      await markFinished(ctx, assigned, p.nodeId, {
        status: 'failed',
        error: `model ${task.model} is no longer in the catalogue`,
      });
      await releaseSlot(ctx, p.nodeId, slot, task.taskId);
      report.failed.push(task.taskId);
      await counted(ctx, 'failed');
      continue;
    }
    if (p.switchModel) {
      // A switch unloads every resident model (the scheduler's rule), then the task loads its own.
      for (const m of p.switchModel.from) {
        await tryDispatch(ctx, p.nodeId, {
          type: 'container.remove',
          instanceId: modelInstanceId(p.nodeId, m),
          force: true,
        });
      }
      await setNodeModels(ctx, p.nodeId, [p.switchModel.to]);
      report.switches++;
      await countModelSwitch(ctx).catch((error: unknown) =>
        ctx.logger.warn('placement count failed', { error: error as Error }),
      );
    }
    const commandId = await tryDispatch(ctx, p.nodeId, {
      type: 'task.run',
      taskId: task.taskId,
      model: task.model,
      server: serverSpec(spec, p.nodeId, worker.node.driver),
      request: modelRequest(spec, task),
      timeoutSeconds: runTimeoutFor(task, now),
    });
    if (commandId === undefined) {
      if (await requeue(ctx, assigned, p.nodeId, 'dispatch failed'))
        await releaseSlot(ctx, p.nodeId, slot, task.taskId);
      await counted(ctx, 'requeued');
      continue;
    }
    await setRunCommand(ctx, task.taskId, p.nodeId, commandId);
    await counted(ctx, 'placed');
    report.placed.push({
      taskId: task.taskId,
      nodeId: p.nodeId,
      ...(p.switchModel ? { switchModel: p.switchModel } : {}),
    });
  }

  await modelBursts(ctx, bursts, {
    catalogue,
    waiting: countByModel(plan.stillQueued.map((id) => taskById.get(id)!)),
    busyNodes: new Set(workers.filter((w) => w.running.length > 0).map((w) => w.id)),
  });
  if (options.sample)
    await recordSample(ctx, catalogue, queue, repair.live).catch((error: unknown) =>
      ctx.logger.warn('sample failed', { error: error as Error }),
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
