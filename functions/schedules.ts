import type { AppContext } from './core/context.js';
import type { ScheduleSpec } from './ports/scheduler.js';
import { loadConfig } from './core/config.js';
import { MINUTE_SCHEDULES, RETIRED_SCHEDULES } from './minute.js';
import { MAINTENANCE_SCHEDULES } from './commander/maintenance/schedule.js';
import { novitaSchedules } from './novita/schedules.js';
import { TRAINING_SCHEDULES } from './training/schedules.js';

/**
 * The control plane's own recurring schedules (safety-net sweeps), declared once: the CDK
 * stack creates them on AWS, the local runtime upserts them at every start (idempotent).
 */
export const APP_SCHEDULES: ScheduleSpec[] = [
  // Every minute, one invocation: the node sweep and reconcile, the task placement safety net,
  // the /ws/metrics and /ws/doctor push on AWS (functions/minute.ts).
  ...MINUTE_SCHEDULES,
  // Training repair sweep (every 5 minutes).
  ...TRAINING_SCHEDULES,
  // Novita spot migration, every NOVITA_MIGRATION_INTERVAL_MINUTES (15).
  ...novitaSchedules(loadConfig().NOVITA_MIGRATION_INTERVAL_MINUTES),
  // Fleet Commander maintenance, daily at 06:00 UTC (acts only while started).
  ...MAINTENANCE_SCHEDULES,
];

export async function ensureAppSchedules(ctx: AppContext): Promise<void> {
  for (const spec of APP_SCHEDULES) await ctx.scheduler.upsert(spec);
  // A data folder of an earlier version holds the schedules the minute schedule replaced.
  for (const name of RETIRED_SCHEDULES) await ctx.scheduler.delete(name);
}
