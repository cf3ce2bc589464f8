/** Recurring and one-time triggers (EventBridge Scheduler semantics). */
export interface ScheduleSpec {
  name: string;
  /** `cron(m h dom mon dow year)`, `rate(5 minutes)` or `at(2026-01-01T00:00:00)`, as EventBridge writes them. */
  expression: string;
  /** IANA zone for cron and at expressions; UTC when absent. */
  timezone?: string;
  /** JSON payload delivered to the target queue on each firing. */
  payload: string;
  enabled?: boolean;
  description?: string;
  /**
   * An app schedule (functions/schedules.ts) fired straight into the events function, as EventBridge
   * Scheduler's Lambda target does, rather than through the events queue: no SQS message a firing.
   */
  direct?: boolean;
}

export interface StoredSchedule extends ScheduleSpec {
  group: string;
  enabled: boolean;
  /** The delivery target as the engine stores it (queue ARN or logical queue name). */
  target: string;
}

export interface Scheduler {
  /** Creates the schedule, or replaces it when the name exists. */
  upsert(spec: ScheduleSpec): Promise<void>;
  get(name: string): Promise<StoredSchedule | undefined>;
  /** Returns false when there was nothing to delete. */
  delete(name: string): Promise<boolean>;
  list(prefix?: string): Promise<StoredSchedule[]>;
  ping(): Promise<void>;
}
