import type { AppContext } from './core/context.js';
import type { ScheduleSpec } from './ports/scheduler.js';
import { MINUTE_SCHEDULES, RETIRED_SCHEDULES } from './minute.js';
import { MAINTENANCE_SCHEDULES } from './commander/maintenance/schedule.js';

/**
 * The control plane's own recurring schedules (safety-net sweeps), declared once: the CDK
 * stack creates them on AWS, the local runtime upserts them at every start (idempotent).
 */
export const APP_SCHEDULES: ScheduleSpec[] = [
  // Every minute, one invocation: the node sweep and reconcile, the task placement safety net,
  // the /ws/metrics and /ws/doctor push on AWS; every 5th minute the training repair sweep, every
  // NOVITA_MIGRATION_INTERVAL_MINUTES-th (15) the Novita spot migration (functions/minute.ts).
  ...MINUTE_SCHEDULES,
  // Fleet Commander maintenance, daily at 06:00 UTC (acts only while started).
  ...MAINTENANCE_SCHEDULES,
];

export async function ensureAppSchedules(ctx: AppContext): Promise<void> {
  for (const spec of APP_SCHEDULES) await ctx.scheduler.upsert(spec);
  // A data folder of an earlier version holds the schedules the minute schedule replaced.
  for (const name of RETIRED_SCHEDULES) await ctx.scheduler.delete(name);
}
