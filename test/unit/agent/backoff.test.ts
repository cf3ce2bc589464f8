import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, retry, sleep } from '../../../agent/backoff.js';

describe('backoffDelay', () => {
  it('doubles the ceiling per attempt and keeps the delay in [cap/2, cap]', () => {
    // Prepare
    const low = { baseMs: 100, maxMs: 10_000, random: () => 0 };
    const high = { baseMs: 100, maxMs: 10_000, random: () => 0.999999 };
    // Act + Assess
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, low))).toEqual([50, 100, 200, 400]);
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, high))).toEqual([100, 200, 400, 800]);
  });

  it('never exceeds maxMs, even for huge attempt counts', () => {
    for (const attempt of [10, 50, 1000, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(attempt, { baseMs: 500, maxMs: 30_000, random: () => 0.999999 });
      expect(d).toBeLessThanOrEqual(30_000);
      expect(d).toBeGreaterThanOrEqual(15_000);
    }
  });

  it('spreads retries (jitter) instead of synchronising them', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, { baseMs: 100, maxMs: 60_000 })));
    expect(delays.size).toBeGreaterThan(10);
  });

  it('Backoff grows and resets', () => {
    const b = new Backoff({ baseMs: 10, maxMs: 1000, random: () => 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([5, 10, 20]);
    b.reset();
    expect(b.next()).toBe(5);
  });
});

describe('retry', () => {
  it('retries until success', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        if (++calls < 3) throw new Error('flaky');
        return 'ok';
      },
      { baseMs: 1, maxMs: 2, maxAttempts: 5 },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
  });

  it('stops at maxAttempts and on a non-retryable error', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error('down');
        },
        { baseMs: 1, maxAttempts: 3 },
      ),
    ).rejects.toThrow('down');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error('bad request');
        },
        { baseMs: 1, maxAttempts: 5, shouldRetry: () => false },
      ),
    ).rejects.toThrow('bad request');
    expect(calls).toBe(1);
  });

  it('honours a server-given minimum delay, capped at maxMs', async () => {
    const waits: number[] = [];
    await retry(
      async (attempt) => {
        if (attempt === 0) throw new Error('429');
      },
      {
        baseMs: 1,
        maxMs: 50,
        maxAttempts: 2,
        minDelayMs: () => 10_000,
        onRetry: (_e, _a, ms) => waits.push(ms),
      },
    );
    expect(waits).toEqual([50]);
  });

  it('sleep resolves false at once when aborted', async () => {
    const c = new AbortController();
    const started = Date.now();
    const p = sleep(10_000, c.signal);
    c.abort();
    expect(await p).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
