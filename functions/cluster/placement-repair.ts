import type { AppContext } from '../core/context.js';
import { dispatchCommand, type DispatchOptions } from '../nodes/commands.js';
import type { Command } from '../../protocol/commands.js';
import { dropDeadline, dueDeadlines, recheckDeadline } from './queue-deadlines.js';
import { releaseSlot, type SlotItem } from './slots.js';
import { closeQueued, getTask, markFinished, requeue, runDeadlineMs, TERMINAL } from './tasks.js';
import { cancelRun } from './task-model.js';
import type { Worker } from './workers.js';

/** A slot claimed by a runner that died before assigning the task is freed after this. */
const CLAIM_GRACE_MS = 30_000;
/** A task cancelled while running keeps its slot until the agent confirms, at most this long. */
const CANCEL_GRACE_MS = 30_000;

/** A dispatch that failed is logged and answered undefined: the caller requeues or moves on. */
export async function tryDispatch(
  ctx: AppContext,
  nodeId: string,
  command: Command,
  options: DispatchOptions = {},
): Promise<string | undefined> {
  try {
    return await dispatchCommand(ctx, nodeId, command, options);
  } catch (error) {
    ctx.logger.warn('dispatch failed', { nodeId, type: command.type, error: error as Error });
    return undefined;
  }
}

export interface Repair {
  live: SlotItem[];
  requeued: string[];
  failed: string[];
  released: number;
}

/**
 * Checks held slots against their tasks and nodes. A quick pass reads only the tasks of offline
 * nodes and of slots past their deadline; the full pass (the scheduled run, over its batch of the
 * held-slot index and its candidates' slots) reads every one, which also frees slots a crashed
 * writer left behind.
 */
export async function repairSlots(
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
          await tryDispatch(ctx, s.nodeId, cancelRun(task));
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
          await tryDispatch(ctx, s.nodeId, cancelRun(task));
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

/**
 * The scheduled run's queue timeouts, from the deadline records past due (queue-deadlines.ts): a
 * task still queued fails, one active is looked at again a minute on, the others' records go.
 * Reads the records due and their tasks, never the queue. The ids of the tasks it failed.
 */
export async function closePastDue(ctx: AppContext, now: number): Promise<string[]> {
  const timedOut: string[] = [];
  for await (const page of dueDeadlines(ctx, now)) {
    await Promise.all(
      page.map(async (d) => {
        const task = await getTask(ctx, d.taskId);
        const error = `timed out after ${d.timeoutSeconds} s in the queue`;
        if (task?.status === 'queued' && (await closeQueued(ctx, d.taskId, 'failed', error))) {
          timedOut.push(d.taskId);
          await dropDeadline(ctx, d);
        } else if (task && !TERMINAL.includes(task.status)) {
          // Active (or placed just now): it may come back to the queue past its deadline.
          await recheckDeadline(ctx, d, now);
        } else await dropDeadline(ctx, d);
      }),
    );
  }
  return timedOut;
}
