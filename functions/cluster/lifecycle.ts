import type { AppContext } from '../core/context.js';
import { ConflictError, NotFoundError } from '../core/errors.js';
import type { AppEvent } from '../core/events.js';
import { dispatchCommand, getCommand } from '../nodes/commands.js';
import { agentEventBlobKey, outputName, outputUrl, putOutput } from './outputs.js';
import { releaseSlot } from './slots.js';
import { cancelRun } from './task-model.js';
import {
  ACTIVE,
  closeQueued,
  getTask,
  markCancelledWhileActive,
  markFinished,
  markStarted,
  recordProgress,
  requestPlacement,
  requeue,
  type TaskItem,
} from './tasks.js';

/** What happens to a task after placement: agent events, cancellation, requeueing. */

/** `agent.task.progress`: the first report marks the task running. */
export async function onTaskProgress(e: AppEvent<'agent.task.progress'>, ctx: AppContext): Promise<void> {
  // The agent's first report is 0 (agent/tasks.ts) and finds the task still `assigned` on this
  // node, so what to write is known without reading it (placement cleared its start and progress);
  // else the lost condition says what is stored. A later report finds it running: one read unit
  // rather than markStarted's lost condition, a write unit.
  let task = e.progress > 0 ? await getTask(ctx, e.taskId) : undefined;
  if (e.progress > 0 && !task) return;
  if (task?.status !== 'running') {
    const { started, current } = await markStarted(ctx, e.taskId, e.nodeId, e.progress);
    if (started) return;
    task = current;
  }
  if (!task || task.nodeId !== e.nodeId || !ACTIVE.includes(task.status)) return;
  await recordProgress(ctx, task, e.nodeId, e.progress);
}

/** `agent.task.finished`: files to outputs/, the outcome on the task, the slot freed, the queue moves. */
export async function onTaskFinished(e: AppEvent<'agent.task.finished'>, ctx: AppContext): Promise<void> {
  const task = await getTask(ctx, e.taskId);
  // A node the task was taken off (it went offline and came back) has nothing to say about it.
  if (!task || task.nodeId !== e.nodeId) return;
  // An earlier run of the task on this node (cancelled before it arrived, or taken off and placed
  // here again) has nothing to say about the current one.
  if (e.runCommandId !== undefined && task.runCommandId !== undefined && e.runCommandId !== task.runCommandId)
    return;
  if (ACTIVE.includes(task.status)) {
    const outputs: string[] = [];
    if (e.status === 'completed') {
      for (const f of e.files) {
        const name = outputName(task.taskId, f.name);
        if ('base64' in f) await putOutput(ctx, name, Buffer.from(f.base64, 'base64'));
        else {
          // Only what the agent routes parked for this node and task.
          if (!f.blobKey.startsWith(agentEventBlobKey(e.nodeId, task.taskId, 0).slice(0, -1))) continue;
          const blob = await ctx.blobs.get(f.blobKey);
          if (!blob) continue;
          await putOutput(ctx, name, blob.body);
          await ctx.blobs.delete(f.blobKey);
        }
        outputs.push(name);
      }
    }
    const result =
      e.result || outputs.length
        ? { ...(e.result ?? {}), ...(outputs.length ? { images: outputs.map(outputUrl) } : {}) }
        : undefined;
    await markFinished(ctx, task, e.nodeId, {
      status: e.status,
      ...(result ? { result } : {}),
      ...(e.error !== undefined
        ? { error: e.error }
        : e.status === 'cancelled'
          ? { error: 'cancelled' }
          : {}),
      outputs,
    });
  }
  // Also after a redelivery, or a cancel the API already recorded: the slot goes once the agent is done.
  if (task.slot !== undefined) await releaseSlot(ctx, e.nodeId, task.slot, task.taskId);
  await requestPlacement(ctx, 'finished');
}

/** `command.completed` for a task.run the agent refused: the task fails instead of waiting for its deadline. */
export async function onCommandCompleted(e: AppEvent<'command.completed'>, ctx: AppContext): Promise<void> {
  if (e.commandType !== 'task.run' || e.status !== 'failed') return;
  const command = await getCommand(ctx, e.commandId);
  if (command?.command.type !== 'task.run') return;
  const task = await getTask(ctx, command.command.taskId);
  if (!task || task.nodeId !== e.nodeId || task.runCommandId !== e.commandId || !ACTIVE.includes(task.status))
    return;
  if (
    await markFinished(ctx, task, e.nodeId, {
      status: 'failed',
      error: e.error ?? 'the agent could not start the task',
    })
  ) {
    if (task.slot !== undefined) await releaseSlot(ctx, e.nodeId, task.slot, task.taskId);
    await requestPlacement(ctx, 'run refused');
  }
}

/**
 * Cancels a queued task (it leaves the queue) or an active one (task.cancel goes to its node;
 * the node keeps the slot until the agent confirms). Cancelling a cancelled task answers the
 * same; a finished one is a 409.
 */
export async function cancelTask(ctx: AppContext, taskId: string): Promise<TaskItem> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const task = await getTask(ctx, taskId);
    if (!task) throw new NotFoundError(`Task ${taskId} not found`);
    if (task.status === 'cancelled') return task;
    if (task.status === 'completed' || task.status === 'failed')
      throw new ConflictError(`Task ${taskId} already ${task.status}`);
    if (task.status === 'queued') {
      const done = await closeQueued(ctx, taskId, 'cancelled', 'cancelled');
      if (done) return done;
      continue; // placed meanwhile: cancel it where it runs
    }
    const done = await markCancelledWhileActive(ctx, task);
    if (!done) continue;
    await dispatchCommand(ctx, task.nodeId!, cancelRun(task));
    return done;
  }
  throw new ConflictError(`Task ${taskId} changed while cancelling; try again`);
}

/** Takes every active task off a node (restart, forced unload); they finish elsewhere. */
export async function requeueTasks(ctx: AppContext, tasks: TaskItem[], why: string): Promise<string[]> {
  const out: string[] = [];
  for (const task of tasks) {
    if (!task.nodeId || !ACTIVE.includes(task.status)) continue;
    if (!(await requeue(ctx, task, task.nodeId, why))) continue;
    if (task.slot !== undefined) await releaseSlot(ctx, task.nodeId, task.slot, task.taskId);
    await dispatchCommand(ctx, task.nodeId, cancelRun(task)).catch(
      () => undefined,
    );
    out.push(task.taskId);
  }
  if (out.length) await requestPlacement(ctx, why);
  return out;
}
