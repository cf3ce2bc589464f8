import { Cron } from 'croner';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalTimeZone,
  CronError,
  latestFiring,
  scheduleExpression,
  validateCron,
  eventBridgeCronToPattern,
  parseExpression,
} from '../../../functions/core/schedule-expressions.js';

describe('cron validation', () => {
  it('accepts standard 5-field schedules and nicknames', () => {
    expect(validateCron('0 2 * * *')).toEqual(['0', '2', '*', '*', '*']);
    expect(validateCron('*/15 9-17 * * mon-fri')).toEqual(['*/15', '9-17', '*', '*', 'MON-FRI']);
    expect(validateCron('@daily')).toEqual(['0', '0', '*', '*', '*']);
  });

  it.each([
    ['61 * * * *', /Invalid value for minute: 61/],
    ['* * *', /5 fields.*got 3/],
    ['* * * * * *', /5 fields.*got 6/],
    ['0 0 30 2 *', /never fires/],
    ['0 0 1 * 1', /both day-of-month and day-of-week/],
    ['0 0 * * 1#2,3#1', /must stand alone/],
    ['5/15 * * * *', /stepping with numeric prefix/],
    ['a b c d e', /illegal characters/],
  ])('refuses %s and says why', (schedule, why) => {
    expect(() => validateCron(schedule)).toThrow(CronError);
    expect(() => validateCron(schedule)).toThrow(why);
  });

  it('knows IANA zones, in their canonical spelling', () => {
    expect(canonicalTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('Mars/Olympus')).toBeUndefined();
  });
});

describe('conversion to EventBridge cron()', () => {
  it.each([
    ['0 2 * * *', 'cron(0 2 * * ? *)'],
    ['30 9 1 * *', 'cron(30 9 1 * ? *)'],
    ['0 2 * * 1', 'cron(0 2 ? * 2 *)'],
    ['0 2 * * 0', 'cron(0 2 ? * 1 *)'],
    ['0 2 * * 7', 'cron(0 2 ? * 1 *)'],
    ['0 2 * * 1-5', 'cron(0 2 ? * 2-6 *)'],
    ['0 2 * * 5-7', 'cron(0 2 ? * 1,6-7 *)'],
    ['0 2 * * MON,WED,FRI', 'cron(0 2 ? * 2,4,6 *)'],
    ['0 2 * * */2', 'cron(0 2 ? * 1,3,5,7 *)'],
    ['0 2 * * 5#3', 'cron(0 2 ? * 6#3 *)'],
    ['0 2 * * 5L', 'cron(0 2 ? * 6L *)'],
    ['0 0 L * *', 'cron(0 0 L * ? *)'],
    ['0 0 15W * *', 'cron(0 0 15W * ? *)'],
    ['*/5 * * JAN-MAR *', 'cron(*/5 * * JAN-MAR ? *)'],
  ])('%s → %s', (schedule, expression) => {
    expect(scheduleExpression(schedule)).toBe(expression);
  });

  // Small standard patterns that EventBridge can hold (day-of-month or day-of-week left open).
  const num = (min: number, max: number) => fc.integer({ min, max }).map(String);
  const field = (min: number, max: number) =>
    fc.oneof(
      fc.constant('*'),
      num(min, max),
      fc
        .tuple(fc.integer({ min, max }), fc.integer({ min, max }))
        .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
      fc.integer({ min: 2, max: 6 }).map((s) => `*/${s}`),
      fc.uniqueArray(fc.integer({ min, max }), { minLength: 2, maxLength: 3 }).map((xs) => xs.join(',')),
    );
  const dow = fc.oneof(
    field(0, 7),
    fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 4 })).map(([d, n]) => `${d}#${n}`),
    fc.integer({ min: 0, max: 6 }).map((d) => `${d}L`),
  );
  const pattern = fc
    .tuple(field(0, 59), field(0, 23), field(1, 28), field(1, 12), dow, fc.boolean())
    .map(([m, h, dom, mon, dw, useDom]) => [m, h, useDom ? dom : '*', mon, useDom ? '*' : dw].join(' '));
  const zone = fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata');

  it('round-trips: the local driver fires the converted expression exactly when croner fires the original', () => {
    fc.assert(
      fc.property(
        pattern,
        zone,
        fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2028, 0, 1) }),
        (p, tz, start) => {
          const expression = scheduleExpression(p, tz);
          const original = new Cron(p, { timezone: tz, paused: true, mode: '5-part' });
          const trigger = parseExpression(expression, tz);
          let at = new Date(start);
          for (let i = 0; i < 8; i++) {
            const want = original.nextRun(at);
            const got = trigger.next(at);
            expect(got?.toISOString(), `${p} (${tz}) as ${expression} after ${at.toISOString()}`).toBe(
              want?.toISOString(),
            );
            if (!want) break;
            at = want;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('converts weekdays back to the same days', () => {
    for (let d = 0; d <= 7; d++) {
      const fields = /^cron\((.*)\)$/.exec(scheduleExpression(`0 2 * * ${d}`))![1]!;
      expect(eventBridgeCronToPattern(fields).pattern).toBe(`0 2 * * ${d % 7}`);
    }
  });
});

describe('firing slots', () => {
  it('is the cron time a delivery stands for, even a little early or late', () => {
    const at = (iso: string) => latestFiring('0 2 * * *', 'UTC', new Date(iso))?.toISOString();
    expect(at('2026-03-01T02:00:00.000Z')).toBe('2026-03-01T02:00:00.000Z');
    expect(at('2026-03-01T02:00:07.000Z')).toBe('2026-03-01T02:00:00.000Z');
    expect(at('2026-03-01T01:59:59.500Z')).toBe('2026-03-01T02:00:00.000Z');
    expect(at('2026-03-01T01:59:00.000Z')).toBe('2026-02-28T02:00:00.000Z');
  });

  it('reads the schedule in its zone', () => {
    expect(latestFiring('0 2 * * *', 'Europe/Berlin', new Date('2026-07-01T00:00:30Z'))?.toISOString()).toBe(
      '2026-07-01T00:00:00.000Z',
    );
  });
});

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
    expect(
      parseExpression('rate(5 minutes)', 'UTC', created)
        .next(new Date('2026-11-22T00:07:00Z'))
        ?.toISOString(),
    ).toBe('2026-11-22T00:10:00.000Z');
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
