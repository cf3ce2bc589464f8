// One numeric priority order for the shared queue.
//
//   cluster API (`priority` string)   vision API (`priority` int, default 0, higher first)   normalised
//   low                               <= -1                                                   -1
//   normal (default)                  0 (default)                                              0
//   high                              1                                                        1
//   critical                          >= 2                                                     2
//
// Both defaults meet at 0. Vision integers are clamped to the cluster's four tiers so the
// scale is bounded: with aging, any waiting task overtakes every new arrival after at most
// (2 - -1) / agingPerMinute minutes, which is what makes the no-starvation argument finite.

export type ClusterPriority = 'low' | 'normal' | 'high' | 'critical';

export const PRIORITY_LOW = -1;
export const PRIORITY_NORMAL = 0;
export const PRIORITY_HIGH = 1;
export const PRIORITY_CRITICAL = 2;

const CLUSTER: Readonly<Record<ClusterPriority, number>> = {
  low: PRIORITY_LOW,
  normal: PRIORITY_NORMAL,
  high: PRIORITY_HIGH,
  critical: PRIORITY_CRITICAL,
};

export const DEFAULT_AGING_PER_MINUTE = 0.1;

export function isClusterPriority(value: unknown): value is ClusterPriority {
  return typeof value === 'string' && Object.hasOwn(CLUSTER, value);
}

export function fromClusterPriority(priority: ClusterPriority): number {
  return CLUSTER[priority];
}

export function fromVisionPriority(priority: number): number {
  if (!Number.isFinite(priority)) return PRIORITY_NORMAL;
  return Math.min(PRIORITY_CRITICAL, Math.max(PRIORITY_LOW, Math.trunc(priority)));
}

/** Accepts either API's form; anything else is normal (both APIs' default). */
export function normalizePriority(priority: ClusterPriority | number | undefined): number {
  if (typeof priority === 'number') return fromVisionPriority(priority);
  return isClusterPriority(priority) ? CLUSTER[priority] : PRIORITY_NORMAL;
}

/** Base priority plus aging; a task enqueued "in the future" has waited 0. */
export function effectivePriority(
  task: { priority: number; enqueuedAt: number },
  now: number,
  agingPerMinute: number = DEFAULT_AGING_PER_MINUTE,
): number {
  const waitedMs = Math.max(0, now - task.enqueuedAt);
  return task.priority + (agingPerMinute * waitedMs) / 60_000;
}

/** Expired once the deadline has been reached. */
export function isTimedOut(task: { enqueuedAt: number; timeoutMs?: number }, now: number): boolean {
  return task.timeoutMs !== undefined && now - task.enqueuedAt >= task.timeoutMs;
}
