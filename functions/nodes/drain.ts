import type { AppContext } from '../core/context.js';
import { ConflictError } from '../core/errors.js';
import { emit } from '../core/events.js';
import { keys, maintenanceKeys } from '../core/keys.js';
import { queryAll, type StoreItem, deleteIf } from '../ports/store.js';
import { getTask, requeue } from '../cluster/tasks.js';
import { cancelRun } from '../cluster/task-model.js';
import { nodeSlots, releaseSlot } from '../cluster/slots.js';
import { LIVE } from '../orchestrator/plan.js';
import { nodeInstances, releaseSlotsOf, transitionInstance } from '../orchestrator/model.js';
import { reconcileImages } from '../orchestrator/reconciler.js';
import { instanceEndpointsDown } from '../orchestrator/registry.js';
import { activeRuns, getJob, runKey, type RunItem } from '../training/model.js';
import { endAttempt } from '../training/runs.js';
import { dispatchCommand, waitForCommands } from './commands.js';
import { deleteNodeRecords, isOnline, setCordon, type NodeItem } from './nodes.js';

/**
 * Drain and retire. A drain cordons the node (nothing new is placed there) and moves what runs
 * on it: service copies get a replacement on another node and are removed once it is placed,
 * inference tasks go back to the queue (their run on this node is cancelled), training runs end
 * their attempt here and the job's retry launches elsewhere. Retiring removes the node from the
 * fleet: its credential, queue and records; its containers stay on the host unless asked to stop.
 */

export type MovedKind = 'service' | 'task' | 'training_run';

export interface Moved {
  kind: MovedKind;
  /** Container id (service copy), task id, or job id. */
  id: string;
  image?: string;
  /** The node the replacement went to; null while it waits in a queue (tasks, training retries). */
  to_node: string | null;
  /** The replacement's id (container id, next run), when there is one. */
  replacement: string | null;
}

export interface NotMoved {
  kind: MovedKind;
  id: string;
  reason: string;
}

export interface DrainReport {
  node_id: string;
  name: string;
  moved: Moved[];
  not_moved: NotMoved[];
}

/** Cordons for a drain, then moves everything that runs on the node. */
export async function drainNode(ctx: AppContext, node: NodeItem): Promise<DrainReport> {
  if (!(await setCordon(ctx, node.nodeId, { cordoned: true, draining: true })))
    throw new ConflictError(`Node ${node.nodeName} was removed meanwhile`, 'NODE_GONE');
  const report: DrainReport = { node_id: node.nodeId, name: node.nodeName, moved: [], not_moved: [] };

  const copies = (await nodeInstances(ctx, node.nodeId)).filter((i) => LIVE.has(i.status));
  if (copies.length) {
    // The images of its copies, each reading its own nodes and candidates, not the fleet.
    const outcome = await reconcileImages(
      ctx,
      copies.map((i) => i.imageId),
    );
    for (const inst of copies) {
      const placed = outcome.placed.find((p) => p.imageId === inst.imageId && p.ordinal === inst.ordinal);
      if (outcome.retired.includes(inst.instanceId) && placed) {
        report.moved.push({
          kind: 'service',
          id: inst.instanceId,
          image: inst.imageId,
          to_node: placed.nodeId,
          replacement: placed.instanceId,
        });
        continue;
      }
      const why = outcome.unplaced.find((u) => u.imageId === inst.imageId && u.ordinal === inst.ordinal);
      report.not_moved.push({
        kind: 'service',
        id: inst.instanceId,
        reason: why?.reason ?? 'not a copy the service still wants, or another writer changed it meanwhile',
      });
    }
    // The answer says whether the replacements run (bounded like every call that waits for agents).
    const waited = await waitForCommands(
      ctx,
      outcome.placed.map((p) => p.commandId),
    );
    for (const c of waited.done) {
      if (c.status !== 'failed') continue;
      const m = report.moved.find((x) => x.replacement === c.instanceId);
      if (m)
        ctx.logger.warn('drain: a replacement failed to start', {
          instanceId: m.replacement,
          error: c.error,
        });
    }
  }

  const tasks = await moveTasks(ctx, node, 'node drained');
  report.moved.push(...tasks.moved);
  report.not_moved.push(...tasks.notMoved);
  const runs = await endRuns(ctx, node, `node ${node.nodeName} was drained`);
  report.moved.push(...runs.moved);
  report.not_moved.push(...runs.notMoved);
  return report;
}

/** Tasks on the node go back to the queue (keeping their place); the node is told to cancel its run. */
async function moveTasks(
  ctx: AppContext,
  node: NodeItem,
  why: string,
): Promise<{ moved: Moved[]; notMoved: NotMoved[] }> {
  const moved: Moved[] = [];
  const notMoved: NotMoved[] = [];
  for (const s of await nodeSlots(ctx, node.nodeId)) {
    const task = await getTask(ctx, s.taskId);
    if (!task || task.nodeId !== node.nodeId || (task.status !== 'assigned' && task.status !== 'running')) {
      continue; // finished or claimed meanwhile: the placement runner frees the slot
    }
    if (await requeue(ctx, task, node.nodeId, why)) {
      await releaseSlot(ctx, node.nodeId, s.slot, task.taskId);
      moved.push({ kind: 'task', id: task.taskId, to_node: null, replacement: null });
      await dispatchCommand(ctx, node.nodeId, cancelRun(task)).catch(
        () => undefined,
      );
    } else {
      notMoved.push({ kind: 'task', id: task.taskId, reason: 'the task finished or moved meanwhile' });
    }
  }
  if (moved.length) await emit(ctx, { type: 'placement.run', reason: why, requestedAt: Date.now() });
  return { moved, notMoved };
}

/** Each active run on the node ends its attempt; the job's retry policy decides where it goes next. */
async function endRuns(
  ctx: AppContext,
  node: NodeItem,
  reason: string,
): Promise<{ moved: Moved[]; notMoved: NotMoved[] }> {
  const moved: Moved[] = [];
  const notMoved: NotMoved[] = [];
  for (const run of await activeRuns(ctx, node.nodeId)) {
    await endAttempt(ctx, run, { exitCode: null, logTail: '', reason });
    const job = await getJob(ctx, run.jobId);
    const next = job?.currentRun && job.currentRun !== runKey(run.slot, run.attempt) ? job.currentRun : null;
    if (job && next && job.runActive) {
      moved.push({ kind: 'training_run', id: run.jobId, to_node: null, replacement: next });
    } else {
      notMoved.push({
        kind: 'training_run',
        id: run.jobId,
        reason: job
          ? `the job is ${job.status}: no retry left to run it elsewhere`
          : 'the job was deleted meanwhile',
      });
    }
  }
  return { moved, notMoved };
}

export interface RetireReport {
  node_id: string;
  name: string;
  /** Containers the node was told to remove (?stop=true). */
  stopped: string[];
  /** Containers left on the host (the control plane forgets them). */
  left_on_host: string[];
  moved: Moved[];
  not_moved: NotMoved[];
}

/**
 * Removes a node from the fleet. With `stop`, its containers are removed first (the node must be
 * online to hear it). Its work is moved as by a drain, its records deleted, its credential and
 * queue revoked, its open problems cleared.
 */
export async function retireNode(
  ctx: AppContext,
  node: NodeItem,
  options: { stop: boolean },
): Promise<RetireReport> {
  if (options.stop && !isOnline(node, ctx))
    throw new ConflictError(
      `Node ${node.nodeName} is offline: its containers cannot be stopped. Retire it without stop=true (they stay on the host)`,
      'NODE_OFFLINE',
    );
  await setCordon(ctx, node.nodeId, { cordoned: true, draining: true });
  const instances = await nodeInstances(ctx, node.nodeId);
  const runs = await activeRuns(ctx, node.nodeId);
  const report: RetireReport = {
    node_id: node.nodeId,
    name: node.nodeName,
    stopped: [],
    left_on_host: [],
    moved: [],
    not_moved: [],
  };
  const containers = [...instances.map((i) => i.instanceId), ...runs.map((r: RunItem) => r.instanceId)];
  if (options.stop) {
    const ids: string[] = [];
    for (const instanceId of containers)
      ids.push(
        await dispatchCommand(
          ctx,
          node.nodeId,
          { type: 'container.remove', instanceId, force: true },
          { instanceId },
        ),
      );
    const waited = await waitForCommands(ctx, ids);
    for (const c of waited.done)
      if (c.status === 'succeeded' && c.instanceId) report.stopped.push(c.instanceId);
  }
  report.left_on_host = containers.filter((id) => !report.stopped.includes(id));

  const tasks = await moveTasks(ctx, node, 'node retired');
  const ended = await endRuns(ctx, node, `node ${node.nodeName} was retired`);
  report.moved.push(...tasks.moved, ...ended.moved);
  report.not_moved.push(...tasks.notMoved, ...ended.notMoved);

  // Forgotten copies (removed, kept a day for the views) free their slots: the reconcile below places the count again elsewhere.
  for (const inst of instances) {
    await instanceEndpointsDown(ctx, inst);
    await transitionInstance(ctx, inst.instanceId, [inst.status], 'removed');
    await releaseSlotsOf(ctx, inst);
  }
  const problems = await queryAll<StoreItem & { nodeId?: string }>(ctx.store, maintenanceKeys.pk, {
    prefix: maintenanceKeys.problemPrefix,
  });
  for (const p of problems) if (p.nodeId === node.nodeId) await deleteByKey(ctx, p);
  const current =
    (await ctx.store.get<NodeItem>(keys.node(node.nodeId).pk, keys.node(node.nodeId).sk)) ?? node;
  await deleteNodeRecords(ctx, current);
  await emit(ctx, { type: 'reconcile' });
  ctx.logger.info('node retired', { nodeId: node.nodeId, stopped: report.stopped.length });
  return report;
}

async function deleteByKey(ctx: AppContext, k: { pk: string; sk: string }): Promise<void> {
  await deleteIf(ctx.store, k.pk, k.sk);
}

/** The sweep's part: nodes silent past NODE_RETIRE_AFTER_SECONDS are retired (containers left alone). */
export async function retireSilentNodes(ctx: AppContext, candidates: NodeItem[]): Promise<string[]> {
  const retired: string[] = [];
  for (const node of candidates) {
    try {
      await retireNode(ctx, node, { stop: false });
      retired.push(node.nodeId);
    } catch (error) {
      ctx.logger.warn('could not retire a silent node', { nodeId: node.nodeId, error: error as Error });
    }
  }
  return retired;
}
