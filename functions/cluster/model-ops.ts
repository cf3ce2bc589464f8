import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, NotFoundError } from '../core/errors.js';
import {
  planRebalance,
  type RebalanceOperation,
  type RebalanceStrategy,
  type SchedAssignment,
} from '../task-planner/index.js';
import { emit } from '../core/events.js';
import { dispatchCommand } from '../nodes/commands.js';
import { listModels, modelInstanceId, serverSpec, type ModelSpec } from './catalogue.js';
import { formatDuration } from './format.js';
import { requeueTasks } from './lifecycle.js';
import type { SlotItem } from './slots.js';
import { getTask, requestPlacement, type TaskItem } from './tasks.js';
import { readNodeHours } from './task-stats.js';
import { readTaskCounts } from './task-counts.js';
import {
  holderWorkers,
  loadWorker,
  planWorkers,
  setNodeModels,
  toSchedNode,
  type Worker,
} from './workers.js';
import { workerStats } from './metrics.js';
import { unknownModel } from './validation.js';

/**
 * Model placement by hand (assign, unload, switch, restart) and by plan (rebalance). Each
 * checks everything first and changes nothing on a refusal; then it dispatches container
 * commands to the agents and records the node's new models, which the scheduler uses at once.
 */

/** A named worker from its own records (node, models, held slots): no fleet read. */
async function requireWorker(ctx: AppContext, id: string, what = 'Worker'): Promise<Worker> {
  const w = await loadWorker(ctx, id);
  if (!w) throw new NotFoundError(`${what} ${id} not found`);
  return w;
}

function requireOnline(w: Worker): void {
  if (!w.online) throw new ConflictError(`Worker ${w.id} is offline`);
}

function requireModel(catalogue: ModelSpec[], id: string, field: string): ModelSpec {
  const m = catalogue.find((x) => x.id === id);
  if (!m) throw unknownModel(field, id);
  return m;
}

const memOf = (catalogue: ModelSpec[], id: string) => catalogue.find((m) => m.id === id)?.gpuMemoryMb ?? 0;

async function startServer(ctx: AppContext, w: Worker, model: ModelSpec): Promise<void> {
  await dispatchCommand(ctx, w.id, { type: 'container.start', spec: serverSpec(model, w.id) });
}

async function removeServer(ctx: AppContext, nodeId: string, model: string): Promise<void> {
  await dispatchCommand(ctx, nodeId, {
    type: 'container.remove',
    instanceId: modelInstanceId(nodeId, model),
    force: true,
  });
}

/**
 * Measured load times per model of the nodes (the last switch-in of each model on that node in the
 * last 24 hours): one query of its own hour records per node, whatever the tasks.
 */
export async function loadTimesOf(
  ctx: AppContext,
  nodeIds: Iterable<string>,
): Promise<Map<string, Map<string, number>>> {
  const now = ctx.now();
  return new Map(
    await Promise.all(
      [...new Set(nodeIds)].map(
        async (id) => [id, workerStats(await readNodeHours(ctx, id), now, null).loadTimeS] as const,
      ),
    ),
  );
}

/** Measured load time of the model on the node (its last switch-in there), else the catalogue's guess. */
async function loadEstimates(
  ctx: AppContext,
  nodeIds: Iterable<string>,
): Promise<(model: ModelSpec, nodeId: string) => number> {
  const measured = await loadTimesOf(ctx, nodeIds);
  return (model, nodeId) => measured.get(nodeId)?.get(model.id) ?? model.loadSeconds;
}

export interface AssignInput {
  model_name: string;
  worker_ids: string[];
  preload: boolean;
  priority: 'low' | 'normal' | 'high' | 'critical';
}

/**
 * Puts a model on workers. preload: its server starts now (`loading`); otherwise the scheduler
 * treats it as resident there and the first task routed to the worker loads it (`queued`).
 * When it does not fit next to what is resident, high and critical assignments evict idle
 * models; lower ones are refused.
 */
export async function assignModel(ctx: AppContext, input: AssignInput) {
  const catalogue = await listModels(ctx);
  const model = requireModel(catalogue, input.model_name, 'model_name');
  const plans: { w: Worker; evict: string[]; already: boolean }[] = [];
  for (const id of [...new Set(input.worker_ids)]) {
    const w = await requireWorker(ctx, id);
    requireOnline(w);
    if (w.resident.includes(model.id)) {
      plans.push({ w, evict: [], already: true });
      continue;
    }
    if (w.gpuMemoryTotalMb < model.gpuMemoryMb)
      throw new ConflictError(
        `${model.id} needs ${model.gpuMemoryMb} MB of GPU memory; worker ${w.id} has ${w.gpuMemoryTotalMb} MB`,
      );
    let free = w.gpuMemoryTotalMb - w.resident.reduce((s, m) => s + memOf(catalogue, m), 0);
    const evict: string[] = [];
    if (free < model.gpuMemoryMb) {
      if (input.priority !== 'high' && input.priority !== 'critical')
        throw new ConflictError(
          `${model.id} does not fit next to ${w.resident.join(', ')} on worker ${w.id}; unload one, or assign with priority high`,
        );
      const busy = new Set(w.running.map((s) => s.model));
      for (const m of [...w.resident]
        .filter((m) => !busy.has(m))
        .sort((a, b) => memOf(catalogue, b) - memOf(catalogue, a))) {
        if (free >= model.gpuMemoryMb) break;
        evict.push(m);
        free += memOf(catalogue, m);
      }
      if (free < model.gpuMemoryMb)
        throw new ConflictError(`${model.id} does not fit on worker ${w.id} without stopping running tasks`);
    }
    plans.push({ w, evict, already: false });
  }
  const estimate = await loadEstimates(
    ctx,
    plans.filter((p) => !p.already).map((p) => p.w.id),
  );
  const assignments = [];
  for (const { w, evict, already } of plans) {
    if (already) {
      assignments.push({ worker_id: w.id, status: 'loaded', estimated_time: '0s' });
      continue;
    }
    for (const m of evict) await removeServer(ctx, w.id, m);
    if (input.preload) await startServer(ctx, w, model);
    await setNodeModels(ctx, w.id, [...w.resident.filter((m) => !evict.includes(m)), model.id]);
    assignments.push({
      worker_id: w.id,
      status: input.preload ? 'loading' : 'queued',
      estimated_time: formatDuration(estimate(model, w.id)),
      ...(evict.length ? { evicted_models: evict } : {}),
    });
  }
  await requestPlacement(ctx, 'model assigned');
  return {
    assignment_id: `assign-${randomUUID().slice(0, 8)}`,
    model_name: model.id,
    priority: input.priority,
    preload: input.preload,
    assignments,
  };
}

async function activeTasksOf(ctx: AppContext, slots: SlotItem[]): Promise<TaskItem[]> {
  const out: TaskItem[] = [];
  for (const s of slots) {
    const t = await getTask(ctx, s.taskId);
    if (t && t.nodeId === s.nodeId && (t.status === 'assigned' || t.status === 'running')) out.push(t);
  }
  return out;
}

/** Unloads a model from workers (all that hold it when none are named). Running tasks of it refuse, unless `force` requeues them. */
export async function unloadModel(
  ctx: AppContext,
  input: { model_name: string; worker_ids?: string[] | undefined; force: boolean },
) {
  const catalogue = await listModels(ctx);
  // Named workers: their own records. None named: the model's holders (the residency index), online or not.
  const targets = input.worker_ids?.length
    ? await Promise.all([...new Set(input.worker_ids)].map((id) => requireWorker(ctx, id)))
    : (await holderWorkers(ctx, [input.model_name], { slots: true })).filter(
        (w) => w.resident.includes(input.model_name) || w.reported.includes(input.model_name),
      );
  if (!targets.length && !catalogue.some((m) => m.id === input.model_name))
    throw unknownModel('model_name', input.model_name);
  // By the tasks' own state: a slot outlives its task's end by the moment its release takes.
  const busy: typeof targets = [];
  for (const w of targets)
    if (
      (
        await activeTasksOf(
          ctx,
          w.running.filter((s) => s.model === input.model_name),
        )
      ).length
    )
      busy.push(w);
  if (busy.length && !input.force)
    throw new ConflictError(
      `${input.model_name} has running tasks on ${busy.map((w) => w.id).join(', ')}; pass force to requeue them`,
    );
  const affected: string[] = [];
  const requeued: string[] = [];
  for (const w of targets) {
    if (!w.resident.includes(input.model_name) && !w.reported.includes(input.model_name)) continue;
    const interrupted = await activeTasksOf(
      ctx,
      w.running.filter((s) => s.model === input.model_name),
    );
    requeued.push(...(await requeueTasks(ctx, interrupted, 'model unloaded')));
    await removeServer(ctx, w.id, input.model_name);
    await setNodeModels(
      ctx,
      w.id,
      w.resident.filter((m) => m !== input.model_name),
    );
    affected.push(w.id);
  }
  return {
    message: affected.length ? 'Model unload initiated' : 'Model not loaded on the given workers',
    model_name: input.model_name,
    affected_workers: affected,
    ...(requeued.length ? { requeued_tasks: requeued } : {}),
  };
}

/** Vision's switch: the node serves only `model` from now on. Refused while the node runs tasks. */
export async function switchModel(ctx: AppContext, nodeIdOrName: string, modelId: string) {
  const [w, catalogue] = await Promise.all([requireWorker(ctx, nodeIdOrName, 'Node'), listModels(ctx)]);
  const model = requireModel(catalogue, modelId, 'model');
  requireOnline(w);
  if (w.running.length)
    throw new ConflictError(`Node ${w.name} is busy with ${w.running.length} task(s); cancel them or wait`);
  if (w.gpuMemoryTotalMb < model.gpuMemoryMb)
    throw new ConflictError(
      `${model.id} needs ${model.gpuMemoryMb} MB of GPU memory; node ${w.name} has ${w.gpuMemoryTotalMb} MB`,
    );
  const previous = [...new Set([...w.resident, ...w.reported])].filter((m) => m !== model.id);
  for (const m of previous) await removeServer(ctx, w.id, m);
  await startServer(ctx, w, model);
  await setNodeModels(ctx, w.id, [model.id]);
  await requestPlacement(ctx, 'model switched');
  const estimate = await loadEstimates(ctx, [w.id]);
  return {
    node_id: w.name,
    model: model.id,
    status: previous.length || !w.reported.includes(model.id) ? ('switching' as const) : ('loaded' as const),
    previous_models: previous,
    estimated_time: formatDuration(estimate(model, w.id)),
  };
}

/** Restarts a worker's serving stack: its tasks go back to the queue, its model servers go. */
export async function restartWorker(ctx: AppContext, workerId: string) {
  const [w, catalogue] = await Promise.all([requireWorker(ctx, workerId), listModels(ctx)]);
  requireOnline(w);
  const requeued = await requeueTasks(ctx, await activeTasksOf(ctx, w.running), 'worker restart');
  const models = [...new Set([...w.resident, ...w.reported])];
  for (const m of models) await removeServer(ctx, w.id, m);
  await setNodeModels(ctx, w.id, []);
  await requestPlacement(ctx, 'worker restarted');
  const estimate = await loadEstimates(ctx, [w.id]);
  const downtime = Math.max(
    30,
    ...models.map((m) => {
      const spec = catalogue.find((c) => c.id === m);
      return spec ? estimate(spec, w.id) : 0;
    }),
  );
  return {
    message: 'Worker restart initiated',
    worker_id: w.id,
    estimated_downtime: formatDuration(downtime),
    requeued_tasks: requeued,
    unloaded_models: models,
  };
}

function operationView(op: RebalanceOperation) {
  if (op.type === 'move')
    return {
      type: 'model_migration' as const,
      from_worker: op.fromNodeId,
      to_worker: op.toNodeId,
      model: op.model,
      reason: op.reason,
      ...(op.interruptsTasks ? { interrupts_tasks: op.interruptsTasks } : {}),
    };
  if (op.type === 'load')
    return { type: 'model_load' as const, worker_id: op.nodeId, model: op.model, reason: op.reason };
  return {
    type: 'model_unload' as const,
    worker_id: op.nodeId,
    model: op.model,
    reason: op.reason,
    ...(op.interruptsTasks ? { interrupts_tasks: op.interruptsTasks } : {}),
  };
}

/**
 * Plans with the scheduler module's planRebalance over a window of the fleet (planWorkers: each
 * model's first holders and a page of free nodes, with their held slots), never the whole fleet;
 * a dry run returns the plan and changes nothing.
 */
export async function rebalance(
  ctx: AppContext,
  input: { strategy: RebalanceStrategy; force: boolean; dry_run: boolean },
) {
  const [catalogue, counts] = await Promise.all([listModels(ctx), readTaskCounts(ctx, { finished: false })]);
  // Demand per model is counted, not read (task-counts.ts).
  const demand = Object.fromEntries(counts.queuedByModel);
  // Free nodes only while models are queued for: without, a plan only unloads (the holders are enough).
  const workers = await planWorkers(
    ctx,
    catalogue.map((m) => m.id),
    { free: catalogue.some((m) => (demand[m.id] ?? 0) > 0) },
  );
  const slots = workers.flatMap((w) => w.running);
  const assignments: SchedAssignment[] = slots.map((s) => ({
    nodeId: s.nodeId,
    model: s.model,
    taskId: s.taskId,
  }));
  const plan = planRebalance(
    workers.map(toSchedNode),
    catalogue.map((m) => ({ id: m.id, gpuMemoryMb: m.gpuMemoryMb })),
    assignments,
    input.strategy,
    { demand, force: input.force },
  );
  const estimate = await loadEstimates(
    ctx,
    plan.operations.flatMap((op) =>
      op.type === 'move' ? [op.toNodeId] : op.type === 'load' ? [op.nodeId] : [],
    ),
  );
  // Nodes work in parallel; one node's loads run one after another.
  const perNode = new Map<string, number>();
  for (const op of plan.operations) {
    if (op.type === 'unload') continue;
    const node = op.type === 'move' ? op.toNodeId : op.nodeId;
    const spec = catalogue.find((m) => m.id === op.model);
    perNode.set(node, (perNode.get(node) ?? 0) + (spec ? estimate(spec, node) : 0));
  }
  const requeued: string[] = [];
  const rebalanceId = `rebal-${randomUUID().slice(0, 8)}`;
  if (!input.dry_run && plan.operations.length) {
    await emit(ctx, {
      type: 'cluster.rebalance.started',
      rebalanceId,
      strategy: plan.strategy,
      affectedWorkers: plan.affectedNodes,
      operations: plan.operations.length,
    });
    const resident = new Map(workers.map((w) => [w.id, new Set(w.resident)] as const));
    const workerById = new Map(workers.map((w) => [w.id, w] as const));
    const unload = async (nodeId: string, model: string) => {
      const interrupted = await activeTasksOf(
        ctx,
        slots.filter((s) => s.nodeId === nodeId && s.model === model),
      );
      requeued.push(...(await requeueTasks(ctx, interrupted, 'rebalance')));
      await removeServer(ctx, nodeId, model);
      resident.get(nodeId)?.delete(model);
    };
    const load = async (nodeId: string, model: string) => {
      const spec = catalogue.find((m) => m.id === model);
      if (spec) await startServer(ctx, workerById.get(nodeId)!, spec);
      resident.get(nodeId)?.add(model);
    };
    for (const op of plan.operations) {
      if (op.type === 'unload') await unload(op.nodeId, op.model);
      else if (op.type === 'load') await load(op.nodeId, op.model);
      else {
        await unload(op.fromNodeId, op.model);
        await load(op.toNodeId, op.model);
      }
    }
    for (const nodeId of plan.affectedNodes)
      await setNodeModels(ctx, nodeId, [...(resident.get(nodeId) ?? [])]);
    await requestPlacement(ctx, 'rebalanced');
  }
  return {
    rebalance_id: rebalanceId,
    status: input.dry_run
      ? ('dry_run' as const)
      : plan.operations.length
        ? ('initiated' as const)
        : ('balanced' as const),
    strategy: plan.strategy,
    dry_run: input.dry_run,
    estimated_duration: formatDuration(Math.max(0, ...perNode.values())),
    affected_workers: plan.affectedNodes,
    operations: plan.operations.map(operationView),
    ...(requeued.length ? { requeued_tasks: requeued } : {}),
  };
}
