import type { AppContext } from '../core/context.js';
import { fleetAggregate } from '../nodes/node-records.js';
import { formatDuration, round1 } from './format.js';
import { latestSample, recentDurations } from './metrics.js';
import { heldSlots } from './slots.js';
import { queuePosition } from './queue-position.js';
import type { TaskItem } from './tasks.js';

/** How old the per-minute fleet sample (or the sweep's aggregate) may be for a wait estimate. */
const CAPACITY_MAX_AGE_MS = 3 * 60_000;
/** A burst of submits shares one capacity read per instance for this long. */
const CAPACITY_CACHE_MS = 5_000;

interface Capacity {
  slots: number;
  free: number;
}

let capacityCache = new WeakMap<AppContext, { at: number; value: Promise<Capacity | undefined> }>();
/** For tests: the next estimate reads capacity again. */
export const resetCapacityCache = (): void => {
  capacityCache = new WeakMap();
};

/**
 * Online task slots and how many are free: the latest fleet sample, else the sweep's aggregate
 * less the held slots (the fleet's running tasks); undefined before either exists. Never the nodes.
 */
async function readCapacity(ctx: AppContext): Promise<Capacity | undefined> {
  const sample = await latestSample(ctx, CAPACITY_MAX_AGE_MS);
  if (sample?.slots !== undefined)
    return { slots: sample.slots, free: Math.max(0, sample.slots - sample.runningTasks) };
  const [agg, held] = await Promise.all([fleetAggregate(ctx, CAPACITY_MAX_AGE_MS), heldSlots(ctx)]);
  return agg ? { slots: agg.slots, free: Math.max(0, agg.slots - held.length) } : undefined;
}

async function capacity(ctx: AppContext): Promise<Capacity | undefined> {
  const now = Date.now();
  const cached = capacityCache.get(ctx);
  if (cached && now - cached.at < CAPACITY_CACHE_MS) return cached.value;
  const value = readCapacity(ctx);
  capacityCache.set(ctx, { at: now, value });
  // A failed read is not cached.
  value.catch(() => {
    if (capacityCache.get(ctx)?.value === value) capacityCache.delete(ctx);
  });
  return value;
}

/**
 * Queue position over free slots, times the model's recent mean run time: zero when a slot is
 * free for it now. Counts the queue ahead of the task (queue-position.ts) and reads one fleet
 * sample (or the sweep's aggregate and the held slots) and the task-stats counters, the last two
 * shared by an instance's submits for a few seconds: nothing that grows with the fleet.
 */
export async function estimateWait(ctx: AppContext, task: TaskItem): Promise<string> {
  const [cap, position, durations] = await Promise.all([
    capacity(ctx),
    queuePosition(ctx, task),
    recentDurations(ctx),
  ]);
  if (position <= 0) return '0s';
  const mean = durations.perModel.get(task.model) ?? durations.fleet ?? 30;
  // Nothing known of the fleet yet (no sample, no sweep), or no slot online: one task at a time.
  if (!cap || cap.slots === 0) return formatDuration(position * mean)!;
  const waves = Math.ceil(Math.max(0, position - cap.free) / cap.slots);
  return formatDuration(round1(waves * mean))!;
}
