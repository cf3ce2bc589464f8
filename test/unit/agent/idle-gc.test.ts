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
});
