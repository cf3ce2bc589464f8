/**
 * Issue 16: queue timeouts without reading the queue. A task submitted with `timeout` gets a
 * deadline record; the scheduled run (and any full-repair run) reads the records past due only,
 * fails the tasks still queued, drops the records of tasks gone from the queue for good, and looks
 * again a minute on at those active (a requeue may bring them back past their deadline).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runPlacement } from '../../../functions/cluster/placement.js';
import { closePastDue } from '../../../functions/cluster/placement-repair.js';
import type { DeadlineItem } from '../../../functions/cluster/queue-deadlines.js';
import { closeQueued, getTask, markAssigned, requeue, submitTask } from '../../../functions/cluster/tasks.js';
import type { AppContext } from '../../../functions/core/context.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { taskQueueKeys } from '../../../functions/core/keys.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';

const X = 'SDXL_4GB_FP8.safetensors';

describe('queue deadlines', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  it('fails the queued tasks past due, forgets the finished, and follows the active ones', async () => {
    const hold = (handlers: Record<string, EventHandler>) => ({
      ...handlers,
      'placement.run': async () => undefined,
    });
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined },
      instrument: { events: hold },
    });
    const ctx = rt.ctx;
    const now = ctx.now();
    const submit = (ageMs: number, timeoutSeconds?: number) =>
      submitTask(
        { ...ctx, now: () => now - ageMs },
        {
          source: 'cluster',
          taskType: 'image_generation',
          model: X,
          parameters: {},
          priority: 0,
          priorityInput: 0,
          ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
        },
      );
    const records = async () =>
      (await ctx.store.query<DeadlineItem>(taskQueueKeys.queueDeadlinesPk)).items.map((r) => [
        r.taskId,
        Number(r.sk.split('#')[0]),
      ]);

    const late = await submit(120_000, 60);
    const cancelled = await submit(120_000, 60);
    const active = await submit(120_000, 60);
    const future = await submit(0, 3_600);
    await submit(120_000); // no timeout: no record
    expect((await records()).map(([id]) => id).sort()).toEqual(
      [late, cancelled, active, future].map((t) => t.taskId).sort(),
    );
    await closeQueued(ctx, cancelled.taskId, 'cancelled');
    await markAssigned(ctx, active.taskId, 'node-a', 0, false, 'cmd-1');

    const report = await runPlacement({ ...ctx, now: () => now }, { fullRepair: true });
    expect(report.timedOut).toEqual([late.taskId]);
    expect(await getTask(ctx, late.taskId)).toMatchObject({
      status: 'failed',
      error: 'timed out after 60 s in the queue',
    });
    // The cancelled task's record is gone; the active one's is due again a minute on.
    expect(await records()).toEqual([
      [active.taskId, now + 60_000],
      [future.taskId, future.createdAtMs + 3_600_000],
    ]);

    // Back in the queue past its deadline: the next look fails it.
    await requeue(ctx, (await getTask(ctx, active.taskId))!, 'node-a', 'node offline');
    const later: AppContext = { ...ctx, now: () => now + 61_000 };
    expect(await closePastDue(later, later.now())).toEqual([active.taskId]);
    expect((await getTask(ctx, active.taskId))?.status).toBe('failed');
    expect(await records()).toEqual([[future.taskId, future.createdAtMs + 3_600_000]]);
  }, 60_000);
});
