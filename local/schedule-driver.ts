import type { Logger } from '@aws-lambda-powertools/logger';
import type { Scheduler, StoredSchedule } from '../functions/ports/scheduler.js';
import { parseExpression, type Trigger } from '../functions/core/schedule-expressions.js';

interface Tracked {
  schedule: StoredSchedule;
  trigger: Trigger;
  /** Next firing not yet delivered. */
  next?: Date;
}

export interface ScheduleDriverOptions {
  scheduler: Scheduler;
  /** Delivers one firing (the payload goes to the events queue). */
  fire: (schedule: StoredSchedule, at: Date) => Promise<void>;
  now?: () => number;
  logger?: Logger;
  /** How often the stored schedules are re-read. */
  refreshMs?: number;
  tickMs?: number;
}

/**
 * Fires stored schedules on time. EventBridge Scheduler does this on AWS; moto and the
 * embedded store only keep the definitions, so the local runtime plays the service's part.
 * Firings missed while the process was down are not replayed (the service does not either).
 */
export class ScheduleDriver {
  private tracked = new Map<string, Tracked>();
  private timer?: NodeJS.Timeout;
  private lastRefresh = 0;
  private running = false;
  private readonly now: () => number;

  constructor(private readonly options: ScheduleDriverOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Re-reads the schedules now; keeps the pending firing of unchanged ones. */
  async refresh(): Promise<void> {
    const schedules = await this.options.scheduler.list();
    const now = new Date(this.now());
    const next = new Map<string, Tracked>();
    for (const schedule of schedules) {
      const old = this.tracked.get(schedule.name);
      if (old && sameDefinition(old.schedule, schedule)) {
        next.set(schedule.name, old);
        continue;
      }
      try {
        const trigger = parseExpression(schedule.expression, schedule.timezone ?? 'UTC', now);
        next.set(schedule.name, { schedule, trigger, next: trigger.next(now) });
      } catch (error) {
        this.options.logger?.error('unparseable schedule', { name: schedule.name, error: error as Error });
      }
    }
    this.tracked = next;
    this.lastRefresh = this.now();
  }

  /** Delivers every firing due at `now`; returns how many were delivered. */
  async tick(): Promise<number> {
    const now = new Date(this.now());
    let fired = 0;
    for (const t of this.tracked.values()) {
      if (!t.schedule.enabled || !t.next || t.next > now) continue;
      const at = t.next;
      // Advance first: a slow or failing delivery must not fire the same occurrence twice.
      t.next = t.trigger.next(now);
      try {
        await this.options.fire(t.schedule, at);
        fired++;
      } catch (error) {
        this.options.logger?.error('schedule delivery failed', { name: t.schedule.name, error: error as Error });
      }
    }
    return fired;
  }

  start(): void {
    const tickMs = this.options.tickMs ?? 500;
    const refreshMs = this.options.refreshMs ?? 5000;
    const loop = async () => {
      if (this.running) return;
      this.running = true;
      try {
        if (this.now() - this.lastRefresh >= refreshMs) await this.refresh();
        await this.tick();
      } catch (error) {
        this.options.logger?.warn('schedule driver tick failed', { error: error as Error });
      } finally {
        this.running = false;
      }
    };
    this.timer = setInterval(() => void loop(), tickMs);
    void loop();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Next pending firing per schedule, for tests and diagnostics. */
  pending(): Record<string, string | undefined> {
    return Object.fromEntries([...this.tracked].map(([k, t]) => [k, t.next?.toISOString()]));
  }
}

function sameDefinition(a: StoredSchedule, b: StoredSchedule): boolean {
  return (
    a.expression === b.expression &&
    a.timezone === b.timezone &&
    a.payload === b.payload &&
    a.enabled === b.enabled &&
    a.target === b.target
  );
}
