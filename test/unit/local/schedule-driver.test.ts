import { describe, expect, it } from 'vitest';
import type { ScheduleSpec, Scheduler, StoredSchedule } from '../../../functions/ports/scheduler.js';
import { ScheduleDriver } from '../../../local/schedule-driver.js';

/** An in-memory Scheduler port: the driver only reads definitions through it. */
class ListScheduler implements Scheduler {
  items = new Map<string, StoredSchedule>();
  async upsert(spec: ScheduleSpec) {
    this.items.set(spec.name, { ...spec, group: 'g', enabled: spec.enabled ?? true, target: 'events' });
  }
  async get(name: string) {
    return this.items.get(name);
  }
  async delete(name: string) {
    return this.items.delete(name);
  }
  async list() {
    return [...this.items.values()];
  }
  async ping() {}
}

describe('ScheduleDriver on an injected clock', () => {
  it('fires a 02:00 UTC cron at 02:00 and not at 01:59, once per occurrence', async () => {
    let now = Date.parse('2026-11-22T01:58:30Z');
    const scheduler = new ListScheduler();
    const fired: string[] = [];
    const driver = new ScheduleDriver({ scheduler, now: () => now, fire: async (s, at) => void fired.push(`${s.name}@${at.toISOString()}`) });
    await scheduler.upsert({ name: 'nightly', expression: 'cron(0 2 * * ? *)', payload: '{}' });
    await driver.refresh();
    now = Date.parse('2026-11-22T01:59:59Z');
    expect(await driver.tick()).toBe(0);
    now = Date.parse('2026-11-22T02:00:00Z');
    expect(await driver.tick()).toBe(1);
    now = Date.parse('2026-11-22T02:00:30Z');
    expect(await driver.tick()).toBe(0);
    expect(fired).toEqual(['nightly@2026-11-22T02:00:00.000Z']);
    expect(driver.pending().nightly).toBe('2026-11-23T02:00:00.000Z');
  });

  it('honours the schedule time zone', async () => {
    let now = Date.parse('2026-11-22T00:00:00Z');
    const scheduler = new ListScheduler();
    const fired: string[] = [];
    const driver = new ScheduleDriver({ scheduler, now: () => now, fire: async (_s, at) => void fired.push(at.toISOString()) });
    await scheduler.upsert({ name: 'tokyo', expression: 'cron(0 9 * * ? *)', timezone: 'Asia/Tokyo', payload: '{}' });
    await driver.refresh();
    now = Date.parse('2026-11-22T00:00:00Z'); // 09:00 in Tokyo
    expect(driver.pending().tokyo).toBe('2026-11-23T00:00:00.000Z');
    now = Date.parse('2026-11-23T00:00:01Z');
    expect(await driver.tick()).toBe(1);
    expect(fired).toEqual(['2026-11-23T00:00:00.000Z']);
  });

  it('skips disabled schedules, picks up changes on refresh and forgets deleted ones', async () => {
    let now = Date.parse('2026-11-22T10:00:30Z');
    const scheduler = new ListScheduler();
    let count = 0;
    const driver = new ScheduleDriver({ scheduler, now: () => now, fire: async () => void count++ });
    await scheduler.upsert({ name: 'm', expression: 'cron(* * * * ? *)', payload: '{}', enabled: false });
    await driver.refresh();
    now += 60_000;
    expect(await driver.tick()).toBe(0);
    await scheduler.upsert({ name: 'm', expression: 'cron(* * * * ? *)', payload: '{}', enabled: true });
    await driver.refresh();
    now += 60_000;
    expect(await driver.tick()).toBe(1);
    await scheduler.delete('m');
    await driver.refresh();
    now += 60_000;
    expect(await driver.tick()).toBe(0);
    expect(count).toBe(1);
  });

  it('does not fire an occurrence twice when delivery fails', async () => {
    let now = Date.parse('2026-11-22T10:00:30Z');
    const scheduler = new ListScheduler();
    let attempts = 0;
    const driver = new ScheduleDriver({
      scheduler,
      now: () => now,
      fire: async () => {
        attempts++;
        throw new Error('queue down');
      },
    });
    await scheduler.upsert({ name: 'm', expression: 'cron(* * * * ? *)', payload: '{}' });
    await driver.refresh();
    now += 60_000;
    expect(await driver.tick()).toBe(0);
    expect(await driver.tick()).toBe(0);
    expect(attempts).toBe(1);
  });
});
