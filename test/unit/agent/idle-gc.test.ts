import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdleCollector } from '../../../agent/idle-gc.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('IdleCollector', () => {
  it('collects once after a burst, when nothing has run for its delay', async () => {
    // Prepare
    vi.useFakeTimers();
    let collections = 0;
    const idle = new IdleCollector(
      () => false,
      3_000,
      () => collections++,
    );
    // Act: five commands end a second apart, then quiet
    for (let i = 0; i < 5; i++) {
      idle.kick();
      await vi.advanceTimersByTimeAsync(1_000);
    }
    const duringBurst = collections;
    await vi.advanceTimersByTimeAsync(10_000);
    // Assess
    expect(duringBurst).toBe(0);
    expect(collections).toBe(1);
  });

  it('waits while commands still run, and collects at once when asked to', async () => {
    vi.useFakeTimers();
    let collections = 0;
    let busy = true;
    const idle = new IdleCollector(
      () => busy,
      3_000,
      () => collections++,
    );
    idle.kick(0);
    await vi.advanceTimersByTimeAsync(9_000);
    const whileBusy = collections;
    busy = false;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(whileBusy).toBe(0);
    expect(collections).toBe(1);
  });

  it('does nothing once stopped, nor where V8 exposes no gc', async () => {
    vi.useFakeTimers();
    let collections = 0;
    const idle = new IdleCollector(
      () => false,
      3_000,
      () => collections++,
    );
    idle.kick();
    idle.stop();
    const bare = new IdleCollector(() => false, 3_000, undefined);
    bare.kick(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(collections).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('collects once quiet after young-generation collections, and no more once stopped', async () => {
    // Real timers: V8 reports its collections to the observer.
    let collections = 0;
    const idle = new IdleCollector(
      () => false,
      20,
      () => collections++,
    );
    idle.watchScavenges();
    // Act: short-lived garbage, enough for several scavenges
    churn();
    for (let i = 0; i < 100 && collections === 0; i++) await sleep(20);
    await sleep(100);
    const afterScavenges = collections;
    idle.stop();
    churn();
    await sleep(200);
    // Assess: one collection for the lot, none after stop
    expect(afterScavenges).toBe(1);
    expect(collections).toBe(1);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** About 100 MB of objects that die young (kept a moment in a ring, so none is optimised away). */
function churn(): void {
  const ring: { i: number }[] = new Array<{ i: number }>(1024);
  for (let i = 0; i < 4_000_000; i++) ring[i & 1023] = { i };
  expect(ring[(4_000_000 - 1) & 1023]!.i).toBe(3_999_999);
}
