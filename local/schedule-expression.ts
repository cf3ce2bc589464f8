import { Cron } from 'croner';

/**
 * Evaluates EventBridge Scheduler expressions the way the service does, so that the local
 * runtime can fire schedules that an emulator (or the embedded store) only stores.
 */
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
