import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import type { Placement } from '../task-planner/index.js';
import { clearFree } from '../nodes/node-records.js';
import { countModelSwitch, countPlacement } from '../observability/counters.js';
import { modelInstanceId, serverSpec, type ModelSpec } from './catalogue.js';
import { tryDispatch } from './placement-repair.js';
import { claimSlot, freeSlots, releaseSlot, type SlotItem } from './slots.js';
import { markAssigned, markFinished, requeue, runDeadlineMs, runTimeoutFor, type TaskItem } from './tasks.js';
import { setNodeModels, type Worker } from './workers.js';

const counted = (ctx: AppContext, outcome: Parameters<typeof countPlacement>[1]) =>
  countPlacement(ctx, outcome).catch((error: unknown) =>
    ctx.logger.warn('placement count failed', { error: error as Error }),
  );

/** The request the model server gets for this task, by the model's protocol. */
export function modelRequest(model: ModelSpec, task: TaskItem): { path: string; body: unknown } {
  // Both protocols take the task's parameters as the JSON body; they differ in what comes back
  // (vision-generate: `images: [{name, contentType, base64}]`, which the agent turns into files).
  return { path: model.path, body: { model: model.id, ...task.parameters } };
}

export interface Applied {
  outcome: 'placed' | 'lost' | 'failed' | 'requeued';
  /** The node was switched to the task's model (counted even when the run then failed to go out). */
  switched: boolean;
}

/**
 * One placement: slot claim → conditional queued→assigned write (with the id the task.run command
 * will carry) → task.run dispatch. `worker.running` follows the slots this runner holds.
 */
export async function applyPlacement(
  ctx: AppContext,
  input: {
    p: Placement;
    task: TaskItem;
    worker: Worker;
    spec: ModelSpec | undefined;
    now: number;
    /** The task was alone in its queue second as the run read it (queue-position.ts). */
    aloneInSecond?: boolean;
  },
): Promise<Applied> {
  const { p, task, worker, spec, now, aloneInSecond } = input;
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
    await counted(ctx, 'lost');
    return { outcome: 'lost', switched: false };
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
  // The command's id is on the task from the start: one write where there were two.
  const commandId = randomUUID();
  const [assigned] = await Promise.all([
    markAssigned(ctx, task.taskId, p.nodeId, slot, p.switchModel !== undefined, commandId, { aloneInSecond }),
    worker.running.length >= worker.maxConcurrency ? clearFree(ctx, p.nodeId) : undefined,
  ]);
  if (!assigned) {
    await releaseSlot(ctx, p.nodeId, slot, task.taskId);
    worker.running = worker.running.filter((s) => s.slot !== slot);
    return { outcome: 'lost', switched: false };
  }
  if (!spec) {
    // Declared when submitted, removed from the catalogue since: nothing can serve it.
    await markFinished(ctx, assigned, p.nodeId, {
      status: 'failed',
      error: `model ${task.model} is no longer in the catalogue`,
    });
    await releaseSlot(ctx, p.nodeId, slot, task.taskId);
    await counted(ctx, 'failed');
    return { outcome: 'failed', switched: false };
  }
  let switched = false;
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
    switched = true;
    await countModelSwitch(ctx).catch((error: unknown) =>
      ctx.logger.warn('placement count failed', { error: error as Error }),
    );
  }
  const sent = await tryDispatch(
    ctx,
    p.nodeId,
    {
      type: 'task.run',
      taskId: task.taskId,
      model: task.model,
      server: serverSpec(spec, p.nodeId, worker.node.driver),
      request: modelRequest(spec, task),
      timeoutSeconds: runTimeoutFor(task, now),
    },
    { commandId },
  );
  if (sent === undefined) {
    if (await requeue(ctx, assigned, p.nodeId, 'dispatch failed'))
      await releaseSlot(ctx, p.nodeId, slot, task.taskId);
    await counted(ctx, 'requeued');
    return { outcome: 'requeued', switched };
  }
  await counted(ctx, 'placed');
  return { outcome: 'placed', switched };
}
