import type { ScheduleSpec } from '../ports/scheduler.js';

export const MIGRATION_SCHEDULE = 'novita-spot-migration';
export const SCHEDULE_EVENT = 'novita.migration.schedule';

/** The spot migration schedule, for APP_SCHEDULES (CDK stack and local runtime). */
export function novitaSchedules(intervalMinutes: number): ScheduleSpec[] {
  return [
    {
      name: MIGRATION_SCHEDULE,
      expression: `rate(${intervalMinutes} ${intervalMinutes === 1 ? 'minute' : 'minutes'})`,
      payload: JSON.stringify({ type: SCHEDULE_EVENT }),
      description: 'Migrates reclaimed Novita spot instances; re-queues quiet instance watches',
    },
  ];
}
