import type { ScheduleSpec } from '../../ports/scheduler.js';
import { nextFiring, scheduleExpression } from '../../core/schedule-expressions.js';

export const MAINTENANCE_SCHEDULE = 'fleet-maintenance';
export const MAINTENANCE_RUN_EVENT = 'maintenance.run';
/** Daily at 06:00 UTC, in standard cron; EventBridge gets `cron(0 6 * * ? *)`. */
export const MAINTENANCE_CRON = '0 6 * * *';

/** The daily maintenance run, for APP_SCHEDULES. It always fires; the handler acts only while maintenance is started. */
export const MAINTENANCE_SCHEDULES: ScheduleSpec[] = [
  {
    name: MAINTENANCE_SCHEDULE,
    expression: scheduleExpression(MAINTENANCE_CRON),
    payload: JSON.stringify({ type: MAINTENANCE_RUN_EVENT }),
    description:
      'Fleet Commander maintenance: detects node problems and applies the automatic fixes (when started)',
  },
];

/** When the schedule fires next after `now` (UTC). */
export function nextMaintenanceRun(now: number): string | null {
  return nextFiring(MAINTENANCE_CRON, 'UTC', new Date(now))?.toISOString() ?? null;
}
