import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import { queryAll, type StoreItem, putIfAbsent } from '../ports/store.js';
import type { ModelSpec } from './catalogue.js';
import { formatDuration, percent, round1 } from './format.js';
import { readDurations, type Durations } from './task-stats.js';
import { tasksSince, type TaskItem } from './tasks.js';
import { loadWorkers, type Worker } from './workers.js';
import type { SlotItem } from './slots.js';
import { fleetAggregate, type FleetPart } from '../nodes/node-records.js';

/**
 * Figures computed from real records: task items (durations, outcomes) and fleet samples
 * (GPU utilisation and memory from the nodes' heartbeats, one sample a minute, written by the
 * scheduled placement run).
 */

export const TIMEFRAMES = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
} as const;
export type Timeframe = keyof typeof TIMEFRAMES;

const SAMPLE_TTL_SECONDS = 31 * 24 * 3600;

export interface Sample {
  at: number;
  /** Mean GPU utilisation of online nodes that report one, %. */
  gpuUtilization: number | null;
  /** GPU memory in use over GPU memory, online nodes, %. */
  memoryUsedPercent: number | null;
  /** Resident model memory that some queued or running task wants, %. */
  efficiency: number | null;
  onlineNodes: number;
  /** Task slots of the online nodes (absent in samples written before it was added). */
  slots?: number;
  runningTasks: number;
  queuedTasks: number;
}

interface SampleItem extends StoreItem, Sample {}

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** The fleet right now, from the last heartbeats. */
export function takeSample(
  workers: Worker[],
  catalogue: ModelSpec[],
  /** One model a queued task, or the queued count by model (task-counts.ts). */
  queued: string[] | ReadonlyMap<string, number>,
  now: number,
): Sample {
  const queuedModels = Array.isArray(queued) ? queued : [...queued.keys()];
  const queuedCount = Array.isArray(queued) ? queued.length : [...queued.values()].reduce((a, b) => a + b, 0);
  const online = workers.filter((w) => w.online);
  const utils = online.map((w) => w.gpuUtilization).filter((u): u is number => u !== undefined);
  let used = 0;
  let total = 0;
  for (const w of online) {
    if (w.gpuMemoryUsedMb === undefined || w.gpuMemoryTotalMb <= 0) continue;
    used += w.gpuMemoryUsedMb;
    total += w.gpuMemoryTotalMb;
  }
  const memOf = new Map(catalogue.map((m) => [m.id, m.gpuMemoryMb] as const));
  const wanted = new Set([...queuedModels, ...online.flatMap((w) => w.running.map((s) => s.model))]);
  let resident = 0;
  let useful = 0;
  for (const w of online) {
    for (const m of w.resident) {
      const mb = memOf.get(m) ?? 0;
      resident += mb;
      if (wanted.has(m)) useful += mb;
    }
  }
  return {
    at: now,
    gpuUtilization: utils.length ? round1(mean(utils)!) : null,
    memoryUsedPercent: total > 0 ? percent(used, total) : null,
    efficiency: resident > 0 ? percent(useful, resident) : null,
    onlineNodes: online.length,
    slots: online.reduce((n, w) => n + w.maxConcurrency, 0),
    runningTasks: online.reduce((n, w) => n + w.running.length, 0),
    queuedTasks: queuedCount,
  };
}

const minuteKey = (ms: number) => new Date(ms).toISOString().slice(0, 16);

/** How old the sweep's parts may be for a sample (the sweep runs every minute). */
const AGGREGATE_MAX_AGE_MS = 3 * 60_000;

/** The fleet sample from the sweep's per-shard aggregate, the held slots and the queue. */
export function sampleFromAggregate(
  agg: FleetPart,
  catalogue: ModelSpec[],
  queuedModels: string[],
  running: SlotItem[],
  now: number,
): Sample {
  const memOf = new Map(catalogue.map((m) => [m.id, m.gpuMemoryMb] as const));
  const wanted = new Set([...queuedModels, ...running.map((s) => s.model)]);
  let resident = 0;
  let useful = 0;
  for (const [m, nodes] of Object.entries(agg.resident)) {
    const mb = (memOf.get(m) ?? 0) * nodes;
    resident += mb;
    if (wanted.has(m)) useful += mb;
  }
  return {
    at: now,
    gpuUtilization: agg.utilCount ? round1(agg.utilSum / agg.utilCount) : null,
    memoryUsedPercent: agg.memTotalMb > 0 ? percent(agg.memUsedMb, agg.memTotalMb) : null,
    efficiency: resident > 0 ? percent(useful, resident) : null,
    onlineNodes: agg.onlineNodes,
    slots: agg.slots,
    runningTasks: running.length,
    queuedTasks: queuedModels.length,
  };
}

/**
 * One sample per minute; a second runner in the same minute writes nothing. From the sweep's
 * aggregate (one record per shard: nothing that grows with the fleet), else (no sweep yet) from
 * the fleet itself.
 */
export async function recordSample(
  ctx: AppContext,
  catalogue: ModelSpec[],
  queue: TaskItem[],
  running: SlotItem[],
): Promise<void> {
  const now = ctx.now();
  const queued = queue.map((t) => t.model);
  const agg = await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS);
  const sample = agg
    ? sampleFromAggregate(agg, catalogue, queued, running, now)
    : takeSample(await loadWorkers(ctx, running), catalogue, queued, now);
  await putIfAbsent(ctx.store, {
    ...taskQueueKeys.clusterSample(minuteKey(now)),
    ...sample,
    expiresAt: Math.floor(now / 1000) + SAMPLE_TTL_SECONDS,
  });
}

export async function samplesSince(ctx: AppContext, fromMs: number): Promise<Sample[]> {
  return queryAll<SampleItem>(ctx.store, taskQueueKeys.clusterSamplesPk, {
    between: [minuteKey(fromMs), '\uffff'],
  });
}

interface Stats {
  average: number | null;
  peak: number | null;
  minimum: number | null;
}

function stats(xs: (number | null)[]): Stats {
  const vs = xs.filter((x): x is number => x !== null);
  if (!vs.length) return { average: null, peak: null, minimum: null };
  return { average: round1(mean(vs)!), peak: round1(Math.max(...vs)), minimum: round1(Math.min(...vs)) };
}

/** Completions per minute bucket, the busiest bucket. */
function peakPerMinute(tasks: TaskItem[]): number {
  const buckets = new Map<number, number>();
  for (const t of tasks) {
    if (t.status !== 'completed' || t.completedAtMs === undefined) continue;
    const b = Math.floor(t.completedAtMs / 60_000);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  return buckets.size ? Math.max(...buckets.values()) : 0;
}

/** GET /cluster/metrics body: tasks created in the window, samples taken in it (plus one taken now). */
export function clusterMetrics(timeframe: Timeframe, tasks: TaskItem[], samples: Sample[]) {
  const completed = tasks.filter((t) => t.status === 'completed');
  const failed = tasks.filter((t) => t.status === 'failed');
  const response = mean(
    completed
      .filter((t) => t.completedAtMs !== undefined)
      .map((t) => (t.completedAtMs! - t.createdAtMs) / 1000),
  );
  const gpu = stats(samples.map((s) => s.gpuUtilization));
  const mem = stats(samples.map((s) => s.memoryUsedPercent));
  const efficiency = mean(samples.map((s) => s.efficiency).filter((e): e is number => e !== null));
  return {
    timeframe,
    metrics: {
      total_tasks: tasks.length,
      successful_tasks: completed.length,
      failed_tasks: failed.length,
      success_rate: percent(completed.length, completed.length + failed.length),
      average_response_time: formatDuration(response ?? undefined),
      peak_throughput: `${peakPerMinute(tasks)} tasks/min`,
      gpu_utilization: gpu,
      memory_usage: {
        average: mem.average === null ? null : `${Math.round(mem.average)}%`,
        peak: mem.peak === null ? null : `${Math.round(mem.peak)}%`,
        efficiency: efficiency === null ? null : round1(efficiency),
      },
      samples: samples.length,
    },
  };
}

export async function loadClusterMetrics(ctx: AppContext, timeframe: Timeframe, live: Sample) {
  const from = ctx.now() - TIMEFRAMES[timeframe];
  const [tasks, samples] = await Promise.all([tasksSince(ctx, from), samplesSince(ctx, from)]);
  return clusterMetrics(timeframe, tasks, [...samples, live]);
}

export interface WorkerStats {
  completedToday: number;
  averageDurationS: number | null;
  successRate: number;
  tasksPerHour: number;
  averageResponseS: number | null;
  errorRate: number;
  performanceScore: number;
  /** Per model: when the node last finished a task of it, and how long its server took to answer. */
  lastUsed: Map<string, number>;
  loadTimeS: Map<string, number>;
}

/** A node's record over the tasks given (the caller passes the last 24 h). */
export function workerStats(
  nodeId: string,
  tasks: TaskItem[],
  now: number,
  fleetAverageDurationS: number | null,
): WorkerStats {
  const mine = tasks.filter((t) => t.nodeId === nodeId);
  const done = mine.filter((t) => t.status === 'completed' && t.completedAtMs !== undefined);
  const failed = mine.filter((t) => t.status === 'failed');
  const midnight = new Date(now);
  midnight.setUTCHours(0, 0, 0, 0);
  const durations = done
    .filter((t) => t.startedAtMs !== undefined)
    .map((t) => (t.completedAtMs! - t.startedAtMs!) / 1000);
  const averageDurationS = mean(durations);
  const finished = done.length + failed.length;
  const successRatio = finished ? done.length / finished : null;
  const lastUsed = new Map<string, number>();
  const loadTimeS = new Map<string, number>();
  // Newest first: the first seen per model is the latest.
  for (const t of [...mine].sort((a, b) => (b.completedAtMs ?? 0) - (a.completedAtMs ?? 0))) {
    if (t.completedAtMs !== undefined && !lastUsed.has(t.model)) lastUsed.set(t.model, t.completedAtMs);
    if (
      t.switchedModel &&
      t.serverReadyAtMs !== undefined &&
      t.startedAtMs !== undefined &&
      !loadTimeS.has(t.model)
    )
      loadTimeS.set(t.model, (t.serverReadyAtMs - t.startedAtMs) / 1000);
  }
  // 10 for a node that never fails and is at least as fast as the fleet average. A node with
  // nothing finished in the window has failed nothing and been slow at nothing: 10, 100 %, 0.
  const speed =
    averageDurationS && fleetAverageDurationS ? Math.min(1, fleetAverageDurationS / averageDurationS) : 1;
  const ratio = successRatio ?? 1;
  return {
    completedToday: done.filter((t) => t.completedAtMs! >= midnight.getTime()).length,
    averageDurationS,
    successRate: round1(ratio * 100),
    tasksPerHour: done.filter((t) => now - t.completedAtMs! <= 3_600_000).length,
    averageResponseS: mean(done.map((t) => (t.completedAtMs! - t.createdAtMs) / 1000)),
    errorRate: Math.round((1 - ratio) * 1000) / 1000,
    performanceScore: round1(10 * ratio * speed),
    lastUsed,
    loadTimeS,
  };
}

export function fleetAverageDuration(tasks: TaskItem[]): number | null {
  return mean(
    tasks
      .filter((t) => t.status === 'completed' && t.startedAtMs !== undefined && t.completedAtMs !== undefined)
      .map((t) => (t.completedAtMs! - t.startedAtMs!) / 1000),
  );
}

/** Mean run time of recent completions of one model, for wait estimates. */
export function averageDurationOf(model: string, tasks: TaskItem[]): number | null {
  return fleetAverageDuration(tasks.filter((t) => t.model === model));
}

/** The latest per-minute fleet sample, when it is younger than `maxAgeMs`. */
export async function latestSample(ctx: AppContext, maxAgeMs: number): Promise<Sample | undefined> {
  const page = await ctx.store.query<SampleItem>(taskQueueKeys.clusterSamplesPk, {
    ascending: false,
    limit: 1,
  });
  const latest = page.items[0];
  return latest && ctx.now() - latest.at <= maxAgeMs ? latest : undefined;
}

/**
 * Recent mean run times (today and yesterday, from the task-stats counters), per model and
 * fleet-wide; refreshed at most every 30 s per context
 * (submits read it). Concurrent misses share one read: a burst of submits would otherwise each
 * read a day of tasks.
 */
let durationCache = new WeakMap<AppContext, { at: number; value: Promise<Durations> }>();
export const resetDurationCache = (): void => {
  durationCache = new WeakMap();
};

export async function recentDurations(ctx: AppContext): Promise<Durations> {
  const now = Date.now();
  const cached = durationCache.get(ctx);
  if (cached && now - cached.at < 30_000) return cached.value;
  const value = readDurations(ctx);
  durationCache.set(ctx, { at: now, value });
  // A failed read is not cached.
  value.catch(() => {
    if (durationCache.get(ctx)?.value === value) durationCache.delete(ctx);
  });
  return value;
}
