/**
 * Issue 16: the task counters come right after a process died between a task's write and its
 * counter's. The recount reads a bounded page of the queue, once the queue stood still a minute
 * (consecutive scheduled runs), and corrects only then.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runPlacement } from '../../../functions/cluster/placement.js';
import {
  readLiveCounts,
  readTaskCounts,
  recountQueued,
  RECOUNT_PAGE,
} from '../../../functions/cluster/task-counts.js';
import { closeQueued, submitTask, type TaskItem } from '../../../functions/cluster/tasks.js';
import type { AppContext } from '../../../functions/core/context.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { keys } from '../../../functions/core/keys.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';

const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';

describe('the queued counters recount', () => {
  let rt: Runtime | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
  });

  async function start(): Promise<AppContext> {
    // Runs the events bring are held back: the test runs the ones it wants.
    const hold = (handlers: Record<string, EventHandler>) => ({
      ...handlers,
      'placement.run': async () => undefined,
    });
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined },
      instrument: { events: hold },
    });
    return rt.ctx;
  }
  const submit = (ctx: AppContext, model: string, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        submitTask(ctx, {
          source: 'cluster',
          taskType: 'image_generation',
          model,
          parameters: { prompt: `recount ${i}` },
          priority: 0,
          priorityInput: 0,
        }),
      ),
    );
  /** A task taken out of the queue by a process that died before its counter write. */
  const leaveUncounted = (ctx: AppContext, t: TaskItem) =>
    ctx.store.update(keys.task(t.taskId).pk, keys.task(t.taskId).sk, {
      set: { status: 'cancelled' },
      remove: ['gsi1pk', 'gsi1sk'],
    });
  /** A recount as the scheduled run does it, a minute after the one before. */
  let minutes = 0;
  const recount = async (ctx: AppContext) => {
    const at = ctx.now() + ++minutes * 60_000;
    return recountQueued({ ...ctx, now: () => at }, (await readLiveCounts(ctx)).records);
  };
  const queued = async (ctx: AppContext) => {
    const c = await readTaskCounts(ctx, { finished: false });
    return { all: c.states.queued, byModel: Object.fromEntries(c.queuedByModel) };
  };

  it('corrects a count left one off once the queue stood still, and not while it moves', async () => {
    const ctx = await start();
    const [x] = await submit(ctx, X, 7);
    await submit(ctx, Y, 3);
    await leaveUncounted(ctx, x!);
    expect(await queued(ctx)).toEqual({ all: 10, byModel: { [X]: 7, [Y]: 3 } });

    // The first run only notes where the counters stand; the second, the queue still, reads it.
    expect(await recount(ctx)).toEqual({ read: 0 });
    expect(await recount(ctx)).toEqual({ read: 9 });
    // A task comes in before the third: what the second read is no longer the queue.
    await submit(ctx, Y, 1);
    expect(await recount(ctx)).toEqual({ read: 0 });
    expect(await queued(ctx)).toEqual({ all: 11, byModel: { [X]: 7, [Y]: 4 } });
    expect(await recount(ctx)).toEqual({ read: 10 });
    // Still for a minute on either side of its read: the difference is drift.
    const fixed = await recount(ctx);
    expect(fixed.corrected).toEqual({
      queued: -1,
      [`queued:m:${X}`]: -1,
      'queued:p:0': -1,
      'queued:t:image_generation': -1,
    });
    expect(fixed.read).toBe(10);
    expect(await queued(ctx)).toEqual({ all: 10, byModel: { [X]: 6, [Y]: 4 } });
    // Right now: the next ones find nothing to correct.
    expect((await recount(ctx)).corrected).toBeUndefined();
  }, 60_000);

  it('reads at most a page: a longer queue is left for when it is short', async () => {
    const ctx = await start();
    const [x] = await submit(ctx, X, RECOUNT_PAGE + 5);
    await leaveUncounted(ctx, x!);
    await recount(ctx);
    expect(await recount(ctx)).toEqual({ read: 0 });
    expect(await recount(ctx)).toEqual({ read: 0 });
    expect((await queued(ctx)).all).toBe(RECOUNT_PAGE + 5);
    // Once it is counted a page, it is read, and corrected.
    await Promise.all(
      (await ctx.store.query<TaskItem>('QUEUE', { index: 'gsi1', limit: 5 })).items.map((t) =>
        closeQueued(ctx, t.taskId, 'cancelled'),
      ),
    );
    expect((await queued(ctx)).all).toBe(RECOUNT_PAGE);
    await recount(ctx);
    expect(await recount(ctx)).toEqual({ read: RECOUNT_PAGE - 1 });
    expect((await recount(ctx)).corrected).toMatchObject({ queued: -1 });
    expect((await queued(ctx)).all).toBe(RECOUNT_PAGE - 1);
  }, 60_000);

  it('the scheduled placement run recounts in quiet minutes', async () => {
    const ctx = await start();
    const [x] = await submit(ctx, X, 4);
    await leaveUncounted(ctx, x!);
    // No node: nothing placed, so each run may recount (a run that moved the queue leaves it).
    const minute = (i: number): AppContext => ({ ...ctx, now: () => Date.now() + i * 60_000 });
    for (let i = 0; i < 3; i++) await runPlacement(minute(i), { sample: true });
    expect(await queued(ctx)).toEqual({ all: 3, byModel: { [X]: 3 } });
    // A second run within the same minute (a retry) leaves the record as it is.
    await leaveUncounted(ctx, (await submit(ctx, Y, 1))[0]!);
    await runPlacement(minute(3), { sample: true });
    await runPlacement(minute(4), { sample: true });
    await runPlacement(minute(4), { sample: true });
    expect(await queued(ctx)).toEqual({ all: 4, byModel: { [X]: 3, [Y]: 1 } });
    await runPlacement(minute(5), { sample: true });
    expect(await queued(ctx)).toEqual({ all: 3, byModel: { [X]: 3 } });
  }, 60_000);
});
