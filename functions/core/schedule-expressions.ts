import { Cron } from 'croner';

/**
 * EventBridge Scheduler expressions, both ways: standard cron in, `cron(...)` out (job and
 * maintenance schedules), and EventBridge's `cron()`, `rate()` and `at()` in, firings out (the
 * local schedule driver, which fires what an emulator or the embedded store only stores).
 *
 * Standard schedules: standard 5-field cron (minute hour day-of-month month day-of-week), evaluated in
 * an IANA time zone (UTC by default), stored on EventBridge Scheduler as `cron(m h dom mon dow year)`.
 *
 * EventBridge differs from standard cron in three ways that matter here:
 *   - one of day-of-month / day-of-week must be `?`, so a pattern restricting both (standard cron
 *     ORs them) has no equivalent and is refused;
 *   - weekdays count 1-7 from Sunday (standard: 0-7, 0 and 7 both Sunday);
 *   - day-of-week takes no `/` step and only one `#` expression.
 */

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

export class CronError extends Error {
  override name = 'CronError';
}

/** Accepted IANA zone names, canonical spelling ('europe/berlin' → 'Europe/Berlin'), or undefined. */
export function canonicalTimeZone(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

function fields(schedule: string): string[] {
  const trimmed = schedule.trim();
  const expanded = NICKNAMES[trimmed.toLowerCase()] ?? trimmed;
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5) {
    throw new CronError(
      `schedule must have 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`,
    );
  }
  // croner reads `?` as "any"; it means the same here, and EventBridge gets its own `?` below.
  return parts.map((p) => p.toUpperCase().replace(/^\?$/, '*'));
}

function cronOf(parts: string[], timezone: string): Cron {
  try {
    return new Cron(parts.join(' '), { timezone, paused: true, mode: '5-part' });
  } catch (error) {
    throw new CronError((error as Error).message.replace(/^CronPattern: /, ''));
  }
}

/**
 * Checks a schedule as croner reads it and as EventBridge can store it; throws CronError saying
 * why not. Returns the normalised 5 fields.
 */
export function validateCron(schedule: string, timezone = 'UTC'): string[] {
  const parts = fields(schedule);
  const cron = cronOf(parts, timezone);
  if (parts[2] !== '*' && parts[4] !== '*') {
    throw new CronError(
      'schedule restricts both day-of-month and day-of-week; EventBridge Scheduler cannot combine them, so set one of the two to *',
    );
  }
  if (!cron.nextRun(new Date())) throw new CronError('schedule never fires (no matching date)');
  toEventBridge(parts);
  return parts;
}

/** A standard weekday (0-7, or a name) as a number 0-6. */
function weekdayNumber(token: string): number {
  const named = WEEKDAYS.indexOf(token);
  if (named >= 0) return named;
  const n = Number(token);
  if (!Number.isInteger(n) || n < 0 || n > 7) throw new CronError(`invalid day-of-week: ${token}`);
  return n % 7;
}

/** EventBridge weekday (1-7 from Sunday) of a standard one. */
const ebWeekday = (standard: number) => (standard % 7) + 1;

/** The weekdays (0-6) one comma-separated day-of-week item covers. */
function weekdaySet(item: string): number[] {
  const [base, stepText] = item.split('/') as [string, string | undefined];
  const step = stepText === undefined ? 1 : Number(stepText);
  if (!Number.isInteger(step) || step < 1) throw new CronError(`invalid day-of-week step: ${item}`);
  let from: number;
  let to: number;
  if (base === '*') [from, to] = [0, 6];
  else if (base.includes('-')) {
    const [a, b] = base.split('-') as [string, string];
    // Ranges stay in standard numbering until the end: `5-7` is Friday to Sunday.
    from = WEEKDAYS.includes(a) ? WEEKDAYS.indexOf(a) : Number(a);
    to = WEEKDAYS.includes(b) ? WEEKDAYS.indexOf(b) : Number(b);
  } else {
    from = weekdayNumber(base);
    to = stepText === undefined ? from : 6;
  }
  const out: number[] = [];
  for (let d = from; d <= to; d += step) out.push(d % 7);
  return out;
}

/** Sorted numbers → `1,3-5,7`. */
function compress(values: number[]): string {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    runs.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return runs.join(',');
}

function dayOfWeekToEventBridge(dow: string): string {
  const items = dow.split(',');
  const special = items.filter((i) => i.includes('#') || i.endsWith('L'));
  if (special.length) {
    if (items.length > 1)
      throw new CronError(`day-of-week with # or L must stand alone on EventBridge: ${dow}`);
    const hash = /^(\w+)#([1-5])$/.exec(dow);
    if (hash) return `${ebWeekday(weekdayNumber(hash[1]!))}#${hash[2]}`;
    const last = /^(\w+)L$/.exec(dow);
    if (last) return `${ebWeekday(weekdayNumber(last[1]!))}L`;
    throw new CronError(`invalid day-of-week: ${dow}`);
  }
  return compress(items.flatMap(weekdaySet).map(ebWeekday));
}

/** 5 validated standard fields → the EventBridge `cron(...)` expression. */
export function toEventBridge(parts: string[]): string {
  const [minute, hour, dom, month, dow] = parts as [string, string, string, string, string];
  let ebDom: string;
  let ebDow: string;
  if (dow === '*') {
    ebDom = dom;
    ebDow = '?';
  } else {
    ebDom = '?';
    ebDow = dayOfWeekToEventBridge(dow);
  }
  return `cron(${minute} ${hour} ${ebDom} ${month} ${ebDow} *)`;
}

/** Validates and converts in one step. */
export function scheduleExpression(schedule: string, timezone = 'UTC'): string {
  return toEventBridge(validateCron(schedule, timezone));
}

/** The latest firing at or before `at` (within a second's tolerance for early delivery), or undefined. */
export function latestFiring(schedule: string, timezone: string, at: Date): Date | undefined {
  const cron = cronOf(fields(schedule), timezone);
  // previousRuns excludes a run exactly at the reference: look from just after it.
  return cron.previousRuns(1, new Date(at.getTime() + 1000))[0];
}

/** The next firing strictly after `after`. */
export function nextFiring(schedule: string, timezone: string, after: Date): Date | undefined {
  return cronOf(fields(schedule), timezone).nextRun(after) ?? undefined;
}

/** Evaluates an EventBridge Scheduler expression the way the service does. */
export interface Trigger {
  /** The first firing strictly after `after`, or undefined when there is none. */
  next(after: Date): Date | undefined;
}

/** `cron(m h dom mon dow year)` → a 5-field croner pattern (EventBridge counts weekdays 1-7 from Sunday). */
export function eventBridgeCronToPattern(fields: string): { pattern: string; years?: string } {
  const parts = fields.trim().split(/\s+/);
  if (parts.length !== 6) throw new Error(`cron() needs 6 fields, got ${parts.length}: ${fields}`);
  const [min, hour, dom, mon, dow, year] = parts as [string, string, string, string, string, string];
  const shiftDow = (f: string) =>
    f === '?' || f === '*'
      ? '*'
      : f.replace(/\d+/g, (d, offset: number, whole: string) => {
          // `6#3` means the third Friday: only the weekday before `#` shifts.
          const before = whole.slice(0, offset);
          if (before.endsWith('#')) return d;
          return String((Number(d) + 6) % 7);
        });
  const pattern = [min, hour, dom === '?' ? '*' : dom, mon, shiftDow(dow)].join(' ');
  return { pattern, ...(year !== '*' ? { years: year } : {}) };
}

function yearMatches(year: number, spec: string): boolean {
  return spec.split(',').some((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? year === a : year >= a! && year <= b;
  });
}

const RATE_UNITS: Record<string, number> = {
  minute: 60_000,
  minutes: 60_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
};

export function parseExpression(expression: string, timezone = 'UTC', createdAt = new Date(0)): Trigger {
  const cron = /^cron\((.+)\)$/.exec(expression.trim());
  if (cron) {
    const { pattern, years } = eventBridgeCronToPattern(cron[1]!);
    const job = new Cron(pattern, { timezone, paused: true, legacyMode: true });
    return {
      next(after) {
        let from = after;
        for (let i = 0; i < 1000; i++) {
          const n = job.nextRun(from);
          if (!n) return undefined;
          if (!years || yearMatches(n.getUTCFullYear(), years)) return n;
          from = n;
        }
        return undefined;
      },
    };
  }
  const rate = /^rate\((\d+)\s+(\w+)\)$/.exec(expression.trim());
  if (rate) {
    const unit = RATE_UNITS[rate[2]!];
    const n = Number(rate[1]);
    if (!unit || n < 1) throw new Error(`Invalid rate expression: ${expression}`);
    const period = n * unit;
    return {
      next(after) {
        const k = Math.floor((after.getTime() - createdAt.getTime()) / period) + 1;
        return new Date(createdAt.getTime() + Math.max(k, 1) * period);
      },
    };
  }
  const at = /^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$/.exec(expression.trim());
  if (at) {
    const when = new Cron(at[1]!, { timezone, paused: true });
    const instant = when.nextRun(new Date(0)) ?? undefined;
    return { next: (after) => (instant && instant > after ? instant : undefined) };
  }
  throw new Error(`Unsupported schedule expression: ${expression}`);
}
