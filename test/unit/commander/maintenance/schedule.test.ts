import { describe, expect, it } from 'vitest';
import { MAINTENANCE_SCHEDULES, nextMaintenanceRun } from '../../../../functions/commander/maintenance/schedule.js';
import { APP_SCHEDULES } from '../../../../functions/schedules.js';

describe('the maintenance schedule', () => {
  it('is an app schedule, daily at 06:00 UTC in EventBridge syntax, delivering maintenance.run', () => {
    expect(MAINTENANCE_SCHEDULES).toEqual([
      expect.objectContaining({
        name: 'fleet-maintenance',
        expression: 'cron(0 6 * * ? *)',
        payload: '{"type":"maintenance.run"}',
      }),
    ]);
    expect(APP_SCHEDULES).toEqual(expect.arrayContaining(MAINTENANCE_SCHEDULES));
  });

  it('next run: today at 06:00 UTC until then, tomorrow after', () => {
    expect(nextMaintenanceRun(Date.parse('2026-03-10T05:59:59Z'))).toBe('2026-03-10T06:00:00.000Z');
    expect(nextMaintenanceRun(Date.parse('2026-03-10T06:00:00Z'))).toBe('2026-03-11T06:00:00.000Z');
    expect(nextMaintenanceRun(Date.parse('2026-12-31T23:00:00Z'))).toBe('2027-01-01T06:00:00.000Z');
  });
});
