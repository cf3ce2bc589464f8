import type { AppContext } from './core/context.js';
import type { ScheduleSpec } from './ports/scheduler.js';
import { loadConfig } from './core/config.js';
import { PLACEMENT_SCHEDULES } from './cluster/placement.js';
import { MAINTENANCE_SCHEDULES } from './commander/maintenance/schedule.js';
import { novitaSchedules } from './novita/schedules.js';
import { TRAINING_SCHEDULES } from './training/schedules.js';

/**
 * The control plane's own recurring schedules (safety-net sweeps), declared once: the CDK
 * stack creates them on AWS, the local runtime upserts them at every start (idempotent).
 */
export const APP_SCHEDULES: ScheduleSpec[] = [
  {
    name: 'nodes-sweep',
    expression: 'rate(1 minute)',
    payload: JSON.stringify({ type: 'nodes.sweep' }),
    description: 'Marks silent nodes offline, then reconciles every image against its desired count',
  },
  // Task queue safety net (every minute) and training repair sweep (every 5 minutes).
  ...PLACEMENT_SCHEDULES,
  ...TRAINING_SCHEDULES,
  // Novita spot migration, every NOVITA_MIGRATION_INTERVAL_MINUTES (15).
  ...novitaSchedules(loadConfig().NOVITA_MIGRATION_INTERVAL_MINUTES),
  // Fleet Commander maintenance, daily at 06:00 UTC (acts only while started).
  ...MAINTENANCE_SCHEDULES,
  // WebSocket API: /ws/metrics and /ws/doctor frames every minute on AWS (the local runtime's timer pushes off Lambda).
  {
    name: 'live-push',
    expression: 'rate(1 minute)',
    payload: JSON.stringify({ type: 'ws.push' }),
    description: 'Pushes metrics and health frames to the WebSocket connections of /ws/metrics and /ws/doctor',
  },
];

export async function ensureAppSchedules(ctx: AppContext): Promise<void> {
  for (const spec of APP_SCHEDULES) await ctx.scheduler.upsert(spec);
}
