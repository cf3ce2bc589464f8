import { queryAll, type Store, type StoreItem } from '../ports/store.js';
import type { ScheduleSpec, Scheduler, StoredSchedule } from '../ports/scheduler.js';

interface ScheduleItem extends StoreItem, StoredSchedule {}

/**
 * Schedules kept in the table, for the embedded runtime. The local schedule driver reads them
 * and fires them on time, exactly as it does for schedules stored in an emulator.
 */
export class StoreScheduler implements Scheduler {
  constructor(
    private readonly store: Store,
    private readonly group: string,
    private readonly target = 'events',
  ) {}

  private pk() {
    return `SCHEDULE#${this.group}`;
  }

  async upsert(spec: ScheduleSpec): Promise<void> {
    const item: ScheduleItem = {
      pk: this.pk(),
      sk: spec.name,
      ...spec,
      group: this.group,
      enabled: spec.enabled ?? true,
      target: this.target,
    };
    await this.store.put(item);
  }

  async get(name: string): Promise<StoredSchedule | undefined> {
    const item = await this.store.get<ScheduleItem>(this.pk(), name);
    return item ? strip(item) : undefined;
  }

  async delete(name: string): Promise<boolean> {
    return (await this.store.delete(this.pk(), name)) !== undefined;
  }

  async list(prefix?: string): Promise<StoredSchedule[]> {
    const items = await queryAll<ScheduleItem>(this.store, this.pk(), { prefix });
    return items.map(strip);
  }

  async ping(): Promise<void> {
    await this.store.ping();
  }
}

function strip(item: ScheduleItem): StoredSchedule {
  const { pk: _pk, sk: _sk, version: _v, ...rest } = item;
  return rest;
}
