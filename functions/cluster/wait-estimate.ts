import type { AppContext } from '../core/context.js';
import { fleetAggregate } from '../nodes/fleet-aggregate.js';
import { formatDuration, round1 } from './format.js';
import { latestSample, recentDurations } from './metrics.js';
import { queuePosition } from './queue-position.js';
import { readTaskCounts } from './task-counts.js';
import type { TaskItem } from './tasks.js';

/** How old the per-minute fleet sample (or the sweep's aggregate) may be for a wait estimate. */
const CAPACITY_MAX_AGE_MS = 3 * 60_000;
interface Capacity {
  slots: number;
  free: number;
}

/**
 * Online task slots and how many are free: the latest fleet sample, else the sweep's aggregate
 * less the counted assigned and running tasks (counters, not the held slots: those grow with a
 * busy fleet); undefined before either exists. Never the nodes.
 */
async function capacity(ctx: AppContext): Promise<Capacity | undefined> {
  const sample = await latestSample(ctx, CAPACITY_MAX_AGE_MS);
  if (sample?.slots !== undefined)
    return { slots: sample.slots, free: Math.max(0, sample.slots - sample.runningTasks) };
  const [agg, counts] = await Promise.all([
    fleetAggregate(ctx, CAPACITY_MAX_AGE_MS),
    readTaskCounts(ctx, { finished: false }),
  ]);
  const busy = counts.states.assigned + counts.states.running;
  return agg ? { slots: agg.slots, free: Math.max(0, agg.slots - busy) } : undefined;
}

/**
 * Queue position over free slots, times the model's recent mean run time: zero when a slot is
 * free for it now. Counts the queue ahead of the task (queue-position.ts) and reads one fleet
 * sample (or the sweep's aggregate and the task counters) and the task-stats counters: nothing that
 * grows with the fleet.
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
