import { describe, expect, it } from 'vitest';
import type { RunItem } from '../../../functions/training/model.js';
import { isStrayRun } from '../../../functions/training/strays.js';

describe('isStrayRun: a run container a node still reports', () => {
  const now = Date.parse('2026-03-10T01:00:00.000Z');
  const run = (status: RunItem['status'], endedAgoMs?: number) =>
    ({
      pk: 'JOB#train-00000000',
      sk: 'RUN#x',
      jobId: 'train-00000000',
      slot: '2026-03-10T00:00:00.000Z',
      attempt: 1,
      instanceId: 'train-00000000-20260310000000000-a1',
      status,
      notBefore: 0,
      createdAt: '2026-03-10T00:00:00.000Z',
      ...(endedAgoMs !== undefined ? { endedAt: new Date(now - endedAgoMs).toISOString() } : {}),
    }) as RunItem;

  it('keeps the container of a run that is running or about to', () => {
    expect(isStrayRun(run('running'), now, 0)).toBe(false);
    expect(isStrayRun(run('pending'), now, 0)).toBe(false);
  });

  it('removes the container of a run that ended, once the grace is over', () => {
    for (const status of ['failed', 'succeeded', 'cancelled'] as const) {
      expect(isStrayRun(run(status, 59_999), now, 60_000)).toBe(false);
      expect(isStrayRun(run(status, 60_000), now, 60_000)).toBe(true);
      expect(isStrayRun(run(status, 0), now, 0)).toBe(true);
    }
  });

  it('removes the container of a run whose job was deleted, or whose end time is unknown', () => {
    expect(isStrayRun(undefined, now, 60_000)).toBe(true);
    expect(isStrayRun(run('failed'), now, 60_000)).toBe(true);
  });
});
