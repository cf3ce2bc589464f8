/**
 * Issue 16: a worker's figures, the worker list, model assignments and /cluster/metrics read the
 * same whatever the tasks finished: each reads small records kept by the hour when a task
 * finishes (task-stats.ts), never the tasks of its window. Finished tasks are loaded straight into
 * the store as markFinished leaves them (the task and its statistics, recorded by the real
 * recordFinish); the embedded runtime's ports are metered; counts, never timings.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Fleet } from '../../../bench/cost/fleet.js';
import { measureGets, withFleet, type Measured } from '../../harness/read-units.js';
import { keys } from '../../../functions/core/keys.js';
import { recordFinish, TASK_STATS_SHARDS } from '../../../functions/cluster/task-stats.js';
import { setNodeModels } from '../../../functions/cluster/workers.js';
import type { TaskItem } from '../../../functions/cluster/tasks.js';

const MINUTE = 60_000;
const SMALL = 200;
const LARGE = 1000;
const MODEL = 'SDXL_4GB_FP8.safetensors';

/**
 * `n` tasks finished on the fleet's nodes in three minutes 70 minutes apart (the last hour, and two
 * before), 1 in 5 failed, the first of each node a model switch. Shards are taken in turn, so
 * both sizes fill the same records.
 */
async function loadFinished(fleet: Fleet, n: number): Promise<void> {
  const ctx = fleet.rt.ctx;
  const now = ctx.now();
  const nodes = fleet.nodes.map((s) => s.nodeId);
  let turn = 0;
  const spy = vi
    .spyOn(Math, 'random')
    .mockImplementation(() => (turn++ % TASK_STATS_SHARDS) / TASK_STATS_SHARDS);
  try {
    for (let i = 0; i < n; i++) {
      const taskId = randomUUID();
      const completedAtMs = now - (i % 3) * 70 * MINUTE - 1_000;
      const createdAtMs = completedAtMs - 9_000;
      const createdAt = new Date(createdAtMs).toISOString();
      const t: TaskItem = {
        ...keys.task(taskId),
        ...keys.taskIndexes(taskId, createdAt),
        taskId,
        source: 'cluster',
        taskType: 'image_generation',
        model: MODEL,
        parameters: { prompt: `task ${i}` },
        priority: 0,
        priorityInput: 'normal',
        status: i % 5 === 4 ? 'failed' : 'completed',
        createdAt,
        createdAtMs,
        runTimeoutSeconds: 600,
        attempts: 1,
        progress: 100,
        counted: true,
        nodeId: nodes[i % nodes.length]!,
        slot: 0,
        switchedModel: i < nodes.length,
        assignedAtMs: createdAtMs + 1_000,
        startedAt: new Date(createdAtMs + 2_000).toISOString(),
        startedAtMs: createdAtMs + 2_000,
        serverReadyAtMs: createdAtMs + 4_000,
        completedAt: new Date(completedAtMs).toISOString(),
        completedAtMs,
      };
      await ctx.store.put(t);
      await recordFinish(ctx, t);
    }
  } finally {
    spy.mockRestore();
  }
  for (const id of nodes) await setNodeModels(ctx, id, [MODEL]);
}

const READS = [
  '/workers',
  '/workers/{first}',
  '/models/assignments',
  '/cluster/metrics?timeframe=1h',
  '/cluster/metrics?timeframe=24h',
  '/cluster/metrics?timeframe=30d',
] as const;

describe('worker figures and cluster metrics read the same whatever the tasks finished', () => {
  const measured = new Map<number, Map<string, Measured>>();
  async function measureAt(n: number) {
    await withFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } }, async (f) => {
      await loadFinished(f, n);
      measured.set(n, await measureGets(f, READS, (path) => path.replace('{first}', f.nodes[0]!.nodeId)));
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 240_000);

  it.each(READS)('%s reads no more with 1,000 finished tasks than with 200', (path) => {
    const small = measured.get(SMALL)!.get(path)!;
    const large = measured.get(LARGE)!.get(path)!;
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });

  it('answers from the statistics: outcomes, throughput, worker figures and load times', () => {
    const large = measured.get(LARGE)!;
    // 1,000 tasks, 1 in 5 failed, 9 s from creation to finish, 7 s run; a third in the last hour.
    const day = large.get('/cluster/metrics?timeframe=24h')!.body.metrics;
    expect(day).toMatchObject({
      total_tasks: 1000,
      successful_tasks: 800,
      failed_tasks: 200,
      success_rate: 80,
      average_response_time: '9s',
    });
    // Every task of a group finished in one minute.
    expect(day.peak_throughput).toBe(
      `${large.get('/cluster/metrics?timeframe=1h')!.body.metrics.successful_tasks} tasks/min`,
    );
    const hour = large.get('/cluster/metrics?timeframe=1h')!.body.metrics;
    expect(hour.successful_tasks + hour.failed_tasks).toBe(334);
    expect(large.get('/cluster/metrics?timeframe=30d')!.body.metrics.total_tasks).toBe(1000);

    const detail = large.get('/workers/{first}')!.body;
    expect(detail.task_history).toMatchObject({ average_duration: '7s', success_rate: 80 });
    expect(detail.metrics).toMatchObject({ average_response_time: '9s', error_rate: 0.2 });
    expect(detail.metrics.tasks_per_hour).toBeGreaterThan(100);
    expect(detail.loaded_models).toEqual([
      expect.objectContaining({ name: MODEL, load_time: '2s', last_used: expect.any(String) }),
    ]);
    const list = large.get('/workers')!.body;
    expect(list.workers).toHaveLength(2);
    expect(list.workers.every((w: { performance_score: number }) => w.performance_score === 8)).toBe(true);
    const assignments = large.get('/models/assignments')!.body.assignments;
    expect(assignments).toHaveLength(2);
    expect(assignments[0].models[0]).toMatchObject({ name: MODEL, load_time: '2s' });
  });
});
