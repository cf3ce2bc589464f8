import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  effectivePriority,
  fromClusterPriority,
  fromVisionPriority,
  isTimedOut,
  normalizePriority,
} from '../../../functions/task-planner/index.js';

describe('priority mapping', () => {
  it('maps cluster tiers and vision integers onto one order, defaults meeting at 0', () => {
    expect(['low', 'normal', 'high', 'critical'].map((p) => normalizePriority(p as 'low'))).toEqual([
      -1, 0, 1, 2,
    ]);
    expect([-5, -1, 0, 1, 2, 9].map(fromVisionPriority)).toEqual([-1, -1, 0, 1, 2, 2]);
    expect(fromClusterPriority('normal')).toBe(fromVisionPriority(0));
    expect(normalizePriority(undefined)).toBe(0);
    expect(fromVisionPriority(Number.NaN)).toBe(0);
    expect(fromVisionPriority(1.9)).toBe(1);
  });

  it('vision order is preserved (never inverted) by the mapping', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (a, b) => {
        if (a <= b) expect(fromVisionPriority(a)).toBeLessThanOrEqual(fromVisionPriority(b));
      }),
    );
  });

  it('aging grows with wait at the given rate and never before enqueue', () => {
    const t = { priority: -1, enqueuedAt: 0 };
    expect(effectivePriority(t, 30 * 60_000)).toBeCloseTo(2); // default 0.1/min: low reaches critical in 30 min
    expect(effectivePriority(t, 60_000, 1)).toBeCloseTo(0);
    expect(effectivePriority(t, -5_000, 1)).toBe(-1);
  });

  it('a task times out once its deadline is reached', () => {
    expect(isTimedOut({ enqueuedAt: 0, timeoutMs: 100 }, 99)).toBe(false);
    expect(isTimedOut({ enqueuedAt: 0, timeoutMs: 100 }, 100)).toBe(true);
    expect(isTimedOut({ enqueuedAt: 0 }, 1e12)).toBe(false);
  });
});
