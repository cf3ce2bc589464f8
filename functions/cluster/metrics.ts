import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import { queryAll, type StoreItem, putIfAbsent } from '../ports/store.js';
import type { ModelSpec } from './catalogue.js';
import { formatDuration, percent, round1 } from './format.js';
import {
  readDurations,
  readFleetFinished,
  type Durations,
  type FleetFinished,
  type StatsBucket,
} from './task-stats.js';
import { loadWorkers, type Worker } from './workers.js';
import { slotsRunning } from './slots.js';
import type { TaskCounts } from './task-counts.js';
import type { FleetPart } from '../nodes/fleet-aggregate.js';
import { readerAggregate } from '../nodes/nodes.js';

/**
 * Figures computed from real records: the finished-task statistics kept by the hour
 * (task-stats.ts: outcomes, durations, per minute completions) and fleet samples (GPU utilisation
 * and memory from the nodes' heartbeats, one sample a minute, written by the scheduled placement
 * run). No figure reads the tasks.
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

/** The fleet sample from the sweep's per-shard aggregate, the running tasks and the queue. */
export function sampleFromAggregate(
  agg: FleetPart,
  catalogue: ModelSpec[],
  queued: ReadonlyMap<string, number>,
  running: Running,
  now: number,
): Sample {
  const memOf = new Map(catalogue.map((m) => [m.id, m.gpuMemoryMb] as const));
  const wanted = new Set([...queued.keys(), ...running.models]);
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
    runningTasks: running.count,
    queuedTasks: [...queued.values()].reduce((a, b) => a + b, 0),
  };
}

/** Tasks running (assigned or running: they hold a slot), and the models of those that matter. */
export interface Running {
  count: number;
  /** Of the resident models, those some task runs. */
  models: ReadonlySet<string>;
}

/**
 * The fleet now, read without the held slots: the sweep's aggregate (one record per shard; before
 * the first sweep, the fleet itself), the running count from the task counters, and for each
 * resident model no task queues one lookup of a slot running it (efficiency only weighs those).
 */
export async function currentSample(
  ctx: AppContext,
  catalogue: ModelSpec[],
  counts: TaskCounts,
): Promise<Sample> {
  const now = ctx.now();
  const queued = counts.queuedByModel;
  const count = counts.states.assigned + counts.states.running;
  const agg = await readerAggregate(ctx);
  const workers = agg ? undefined : await loadWorkers(ctx, []);
  const resident = agg
    ? Object.keys(agg.resident)
    : [...new Set(workers!.filter((w) => w.online).flatMap((w) => w.resident))];
  const looked = await Promise.all(
    resident
      .filter((m) => !queued.has(m))
      .map(async (m) => ((await slotsRunning(ctx, m, 1)).length ? [m] : [])),
  );
  const running: Running = { count, models: new Set(looked.flat()) };
  if (agg) return sampleFromAggregate(agg, catalogue, queued, running, now);
  // The workers carry no slots: the running models count as wanted (no queued task) and the
  // running count is the counters'.
  const wanted = new Map([...[...running.models].map((m) => [m, 0] as const), ...queued]);
  return { ...takeSample(workers!, catalogue, wanted, now), runningTasks: count };
}

/** One sample per minute; a second runner in the same minute writes nothing. */
export async function recordSample(
  ctx: AppContext,
  catalogue: ModelSpec[],
  counts: TaskCounts,
): Promise<void> {
  const now = ctx.now();
  const sample = await currentSample(ctx, catalogue, counts);
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

/**
 * GET /cluster/metrics body: the tasks finished in the window (by the minute for 1h, else by the
 * hour) and those queued or running now (`inFlight`); samples taken in it (plus one taken now).
 */
export function clusterMetrics(
  timeframe: Timeframe,
  finished: FleetFinished,
  inFlight: number,
  samples: Sample[],
) {
  const gpu = stats(samples.map((s) => s.gpuUtilization));
  const mem = stats(samples.map((s) => s.memoryUsedPercent));
  const efficiency = mean(samples.map((s) => s.efficiency).filter((e): e is number => e !== null));
  return {
    timeframe,
    metrics: {
      total_tasks: finished.completed + finished.failed + finished.cancelled + inFlight,
      successful_tasks: finished.completed,
      failed_tasks: finished.failed,
      success_rate: percent(finished.completed, finished.completed + finished.failed),
      average_response_time: formatDuration(finished.responseS ?? undefined),
      peak_throughput: `${finished.peakPerMinute} tasks/min`,
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

export async function loadClusterMetrics(
  ctx: AppContext,
  timeframe: Timeframe,
  live: Sample,
  inFlight: number,
) {
  const [finished, samples] = await Promise.all([
    readFleetFinished(ctx, TIMEFRAMES[timeframe]),
    samplesSince(ctx, ctx.now() - TIMEFRAMES[timeframe]),
  ]);
  return clusterMetrics(timeframe, finished, inFlight, [...samples, live]);
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

const hourStart = (sk: string) => Date.parse(`${sk.slice(2)}:00:00Z`);

/** A node's record from its hour records (task-stats.ts; the caller reads the last 24 hours). */
export function workerStats(
  hours: readonly StatsBucket[],
  now: number,
  fleetAverageDurationS: number | null,
): WorkerStats {
  const midnight = new Date(now);
  midnight.setUTCHours(0, 0, 0, 0);
  // The current minute and the 59 before.
  const lastHourFrom = Math.floor(now / 60_000) * 60_000 - 59 * 60_000;
  let completed = 0;
  let failed = 0;
  let runMs = 0;
  let respMs = 0;
  let completedToday = 0;
  let tasksPerHour = 0;
  const lastUsed = new Map<string, number>();
  const loadTimeS = new Map<string, number>();
  // Oldest first: a later hour's load time replaces an earlier one.
  for (const h of [...hours].sort((a, b) => (a.sk < b.sk ? -1 : 1))) {
    const start = hourStart(h.sk);
    completed += h.completed ?? 0;
    failed += h.failed ?? 0;
    runMs += h.runMs ?? 0;
    respMs += h.respMs ?? 0;
    if (start >= midnight.getTime()) completedToday += h.completed ?? 0;
    for (const [field, value] of Object.entries(h)) {
      if (typeof value !== 'number') continue;
      if (/^c\d\d$/.test(field) && start + Number(field.slice(1)) * 60_000 >= lastHourFrom)
        tasksPerHour += value;
      else if (field.startsWith('u:'))
        lastUsed.set(field.slice(2), Math.max(value, lastUsed.get(field.slice(2)) ?? 0));
      else if (field.startsWith('l:')) loadTimeS.set(field.slice(2), value);
    }
  }
  const averageDurationS = completed ? runMs / completed / 1000 : null;
  const finished = completed + failed;
  // 10 for a node that never fails and is at least as fast as the fleet average. A node with
  // nothing finished in the window has failed nothing and been slow at nothing: 10, 100 %, 0.
  const ratio = finished ? completed / finished : 1;
  const speed =
    averageDurationS && fleetAverageDurationS ? Math.min(1, fleetAverageDurationS / averageDurationS) : 1;
  return {
    completedToday,
    averageDurationS,
    successRate: round1(ratio * 100),
    tasksPerHour,
    averageResponseS: completed ? respMs / completed / 1000 : null,
    errorRate: Math.round((1 - ratio) * 1000) / 1000,
    performanceScore: round1(10 * ratio * speed),
    lastUsed,
    loadTimeS,
  };
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
