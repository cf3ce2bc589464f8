import { describe, expect, it } from 'vitest';
import {
  clusterMetrics,
  recentDurations,
  resetDurationCache,
  TIMEFRAMES,
  workerStats,
  type Sample,
} from '../../../functions/cluster/metrics.js';
import type { AppContext } from '../../../functions/core/context.js';
import type { QueryOptions, StoreItem, UpdateSpec } from '../../../functions/ports/store.js';
import {
  readFleetFinished,
  readNodeHours,
  recordFinish,
  TASK_STATS_SHARDS,
} from '../../../functions/cluster/task-stats.js';
import type { TaskItem } from '../../../functions/cluster/tasks.js';

const T0 = Date.parse('2026-05-30T10:00:00Z');

function task(id: string, over: Partial<TaskItem>): TaskItem {
  return {
    pk: `TASK#${id}`,
    sk: 'META',
    taskId: id,
    source: 'cluster',
    taskType: 'text_generation',
    model: 'llama-2-7b',
    parameters: {},
    priority: 0,
    priorityInput: 'normal',
    status: 'completed',
    createdAt: new Date(T0).toISOString(),
    createdAtMs: T0,
    runTimeoutSeconds: 600,
    attempts: 1,
    progress: 100,
    nodeId: 'w1',
    ...over,
  };
}

const sample = (gpu: number | null, mem: number | null, eff: number | null): Sample => ({
  at: T0,
  gpuUtilization: gpu,
  memoryUsedPercent: mem,
  efficiency: eff,
  onlineNodes: 1,
  runningTasks: 0,
  queuedTasks: 0,
});

/** A store of plain maps with what the task statistics use: update (set, add) and a range query. */
function statsContext(clock: { now: number }) {
  const parts = new Map<string, Map<string, StoreItem>>();
  const store = {
    update: async (pk: string, sk: string, spec: UpdateSpec) => {
      const part = parts.get(pk) ?? parts.set(pk, new Map()).get(pk)!;
      const item: StoreItem = { ...(part.get(sk) ?? { pk, sk }), ...spec.set };
      for (const [f, v] of Object.entries(spec.add ?? {}))
        item[f] = ((item[f] as number | undefined) ?? 0) + v;
      part.set(sk, item);
      return item;
    },
    query: async (pk: string, options: QueryOptions = {}) => {
      const [from, to] = options.between ?? ['', '\uffff'];
      const items = [...(parts.get(pk)?.values() ?? [])]
        .filter((i) => i.sk >= from && i.sk <= to)
        .sort((x, y) => (x.sk < y.sk ? -1 : 1));
      return { items };
    },
  };
  const ctx = { now: () => clock.now, store, logger: { warn: () => undefined } } as unknown as AppContext;
  /** Records finished tasks in the order they finished, each at its own completion time. */
  const finish = async (...tasks: TaskItem[]) => {
    for (const t of [...tasks].sort((x, y) => x.completedAtMs! - y.completedAtMs!)) {
      clock.now = t.completedAtMs!;
      await recordFinish(ctx, t);
    }
  };
  return { ctx, finish };
}

describe('cluster metrics', () => {
  it('computes outcomes, response time, peak throughput and sampled GPU and memory', async () => {
    const clock = { now: T0 };
    const { ctx, finish } = statsContext(clock);
    await finish(
      task('a', { startedAtMs: T0 + 1_000, completedAtMs: T0 + 3_000 }),
      task('b', { startedAtMs: T0 + 1_000, completedAtMs: T0 + 5_000 }),
      task('c', { startedAtMs: T0 + 1_000, completedAtMs: T0 + 61_000 }),
      task('d', { status: 'failed', completedAtMs: T0 + 2_000 }),
      // Three hours before: in the last 24 hours, not in the last hour.
      task('old', { createdAtMs: T0 - 3 * 3_600_000, completedAtMs: T0 - 3 * 3_600_000 + 1_000 }),
    );
    clock.now = T0 + 120_000;
    const samples = [sample(50, 70, 80), sample(90, 90, null), sample(10, null, 100)];
    // One task queued now ('e').
    const day = clusterMetrics('24h', await readFleetFinished(ctx, TIMEFRAMES['24h']), 1, samples);
    expect(day).toEqual({
      timeframe: '24h',
      metrics: {
        total_tasks: 6,
        successful_tasks: 4,
        failed_tasks: 1,
        success_rate: 80,
        average_response_time: '17.5s',
        peak_throughput: '2 tasks/min',
        gpu_utilization: { average: 50, peak: 90, minimum: 10 },
        memory_usage: { average: '80%', peak: '90%', efficiency: 90 },
        samples: 3,
      },
    });
    // The last hour, by the minute.
    const hour = clusterMetrics('1h', await readFleetFinished(ctx, TIMEFRAMES['1h']), 1, samples);
    expect(hour.metrics).toMatchObject({
      total_tasks: 5,
      successful_tasks: 3,
      failed_tasks: 1,
      success_rate: 75,
      average_response_time: '23s',
      peak_throughput: '2 tasks/min',
    });
  });

  it('says null rather than inventing figures when there is nothing to measure', async () => {
    const { ctx } = statsContext({ now: T0 });
    const out = clusterMetrics('1h', await readFleetFinished(ctx, TIMEFRAMES['1h']), 0, []);
    expect(out.metrics).toMatchObject({
      total_tasks: 0,
      success_rate: 0,
      average_response_time: null,
      peak_throughput: '0 tasks/min',
      gpu_utilization: { average: null },
    });
  });
});

describe('worker stats', () => {
  it("reads a worker's history from its hour records", async () => {
    const clock = { now: T0 };
    const { ctx, finish } = statsContext(clock);
    const yesterday = T0 - 11 * 3_600_000;
    await finish(
      task('a', {
        startedAtMs: T0,
        completedAtMs: T0 + 2_000,
        switchedModel: true,
        serverReadyAtMs: T0 + 1_500,
      }),
      task('b', { startedAtMs: T0, completedAtMs: T0 + 4_000 }),
      task('c', { status: 'failed', completedAtMs: T0 + 1_000 }),
      task('d', { nodeId: 'w2', startedAtMs: T0, completedAtMs: T0 + 1_000 }),
      // Yesterday (UTC) but in the last 24 hours; and one older than 24 hours, left out.
      task('y', {
        createdAtMs: yesterday - 3_000,
        startedAtMs: yesterday - 3_000,
        completedAtMs: yesterday,
      }),
      task('z', { createdAtMs: T0 - 25 * 3_600_000, completedAtMs: T0 - 25 * 3_600_000 + 9_000 }),
    );
    const now = T0 + 30 * 60_000;
    clock.now = now;
    const s = workerStats(await readNodeHours(ctx, 'w1'), now, 1.5);
    expect(s).toMatchObject({
      completedToday: 2,
      averageDurationS: 3,
      successRate: 75,
      tasksPerHour: 2,
      averageResponseS: 3,
      errorRate: 0.25,
      performanceScore: 3.8, // 10 x 3/4 success x (1.5 s fleet / 3 s here)
    });
    expect(s.loadTimeS.get('llama-2-7b')).toBe(1.5);
    expect(s.lastUsed.get('llama-2-7b')).toBe(T0 + 4_000);
    // An hour and a minute later, the last hour holds none of them.
    clock.now = T0 + 61 * 60_000 + 5_000;
    expect(workerStats(await readNodeHours(ctx, 'w1'), clock.now, 1.5).tasksPerHour).toBe(0);
    // Nothing finished: nothing failed and nothing slow, so the figures are those of a clean record.
    expect(workerStats(await readNodeHours(ctx, 'idle'), now, 1.5)).toMatchObject({
      completedToday: 0,
      averageDurationS: null,
      successRate: 100,
      errorRate: 0,
      performanceScore: 10,
    });
  });
});

describe('recent durations for wait estimates', () => {
  /** A context whose store answers the task-stats queries slowly, counting them; shard 0 holds `stats`. */
  function slowContext(stats: Record<string, unknown>[]) {
    const calls = { n: 0 };
    const ctx = {
      now: () => T0 + 60_000,
      store: {
        query: async (pk: string) => {
          calls.n++;
          await new Promise((r) => setTimeout(r, 20));
          return { items: pk === 'TASKSTATS#0' ? stats : [] };
        },
      },
    } as unknown as AppContext;
    return { ctx, calls };
  }

  it('reads the counters once for a burst of concurrent callers, and once per context', async () => {
    resetDurationCache();
    // One completion of 4 s, as recordCompletion counts it.
    const day = {
      pk: 'TASKSTATS#0',
      sk: 'd',
      count: 1,
      seconds: 4,
      'count:llama-2-7b': 1,
      'seconds:llama-2-7b': 4,
    };
    const a = slowContext([day]);
    const b = slowContext([]);
    const results = await Promise.all([
      ...Array.from({ length: 10 }, () => recentDurations(a.ctx)),
      recentDurations(b.ctx),
    ]);
    // One query per counter shard, whatever the number of callers.
    expect(a.calls.n).toBe(TASK_STATS_SHARDS);
    expect(b.calls.n).toBe(TASK_STATS_SHARDS);
    expect(results[0]!.perModel.get('llama-2-7b')).toBe(4);
    expect(results[0]!.fleet).toBe(4);
    expect(results[10]!.fleet).toBeNull();
    await recentDurations(a.ctx);
    expect(a.calls.n).toBe(TASK_STATS_SHARDS);
  });

  it('does not keep a failed read', async () => {
    resetDurationCache();
    let fail = true;
    const ctx = {
      now: () => T0,
      store: {
        query: async () => {
          if (fail) throw new Error('store down');
          return { items: [] };
        },
      },
    } as unknown as AppContext;
    await expect(recentDurations(ctx)).rejects.toThrow('store down');
    fail = false;
    await expect(recentDurations(ctx)).resolves.toMatchObject({ fleet: null });
  });
});
