import { describe, expect, it } from 'vitest';
import { eventBridgeCronToPattern, parseExpression } from '../../../local/schedule-expression.js';

describe('EventBridge schedule expressions', () => {
  it('fires a daily cron at 02:00 UTC, not at 01:59', () => {
    const t = parseExpression('cron(0 2 * * ? *)');
    expect(t.next(new Date('2026-01-01T01:58:00Z'))?.toISOString()).toBe('2026-01-01T02:00:00.000Z');
    expect(t.next(new Date('2026-01-01T02:00:00Z'))?.toISOString()).toBe('2026-01-02T02:00:00.000Z');
  });

  it('counts weekdays from Sunday = 1 as EventBridge does', () => {
    expect(eventBridgeCronToPattern('0 2 ? * 2 *').pattern).toBe('0 2 * * 1');
    expect(eventBridgeCronToPattern('0 2 ? * 2-6 *').pattern).toBe('0 2 * * 1-5');
    expect(eventBridgeCronToPattern('0 2 ? * 6#3 *').pattern).toBe('0 2 * * 5#3');
    // 2026-11-23 is a Monday.
    expect(parseExpression('cron(0 2 ? * 2 *)').next(new Date('2026-11-21T00:00:00Z'))?.toISOString()).toBe(
      '2026-11-23T02:00:00.000Z',
    );
  });

  it('evaluates cron in the schedule time zone', () => {
    const t = parseExpression('cron(30 9 * * ? *)', 'Europe/Paris');
    expect(t.next(new Date('2026-11-22T00:00:00Z'))?.toISOString()).toBe('2026-11-22T08:30:00.000Z');
    expect(t.next(new Date('2026-07-01T00:00:00Z'))?.toISOString()).toBe('2026-07-01T07:30:00.000Z');
  });

  it('honours the year field', () => {
    const t = parseExpression('cron(0 0 1 1 ? 2028)');
    expect(t.next(new Date('2026-06-01T00:00:00Z'))?.toISOString()).toBe('2028-01-01T00:00:00.000Z');
  });

  it('fires rate() from the creation instant and at() once', () => {
    const created = new Date('2026-11-22T00:00:00Z');
    expect(parseExpression('rate(5 minutes)', 'UTC', created).next(new Date('2026-11-22T00:07:00Z'))?.toISOString()).toBe(
      '2026-11-22T00:10:00.000Z',
    );
    const at = parseExpression('at(2026-12-01T10:00:00)', 'America/New_York');
    expect(at.next(new Date('2026-11-22T00:00:00Z'))?.toISOString()).toBe('2026-12-01T15:00:00.000Z');
    expect(at.next(new Date('2026-12-01T15:00:00Z'))).toBeUndefined();
  });

  it('rejects what EventBridge rejects', () => {
    expect(() => parseExpression('cron(0 2 * * *)')).toThrow(/6 fields/);
    expect(() => parseExpression('rate(0 minutes)')).toThrow();
    expect(() => parseExpression('every day')).toThrow();
  });
});
