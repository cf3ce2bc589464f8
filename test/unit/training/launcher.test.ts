import { describe, expect, it } from 'vitest';
import { containerGone } from '../../../functions/training/launcher.js';

describe('containerGone: a run container lost from its node', () => {
  const startedAt = Date.parse('2026-03-10T01:00:00.000Z');
  const start = { status: 'succeeded' as const, completedAt: new Date(startedAt).toISOString() };
  const sample = { state: 'running', kind: 'run', cpuPercent: 1, memoryPercent: 1, memoryUsageMb: 1 };
  const node = (afterMs: number, instanceIds: string[]) => ({
    lastHeartbeatMs: startedAt + afterMs,
    containerStats: Object.fromEntries(instanceIds.map((id) => [id, sample])),
  });

  it('is gone when a heartbeat well after the start lists no container of it', () => {
    expect(containerGone(start, node(30_000, ['other']), 'run-1', 2)).toBe(true);
    expect(containerGone(start, node(30_000, []), 'run-1', 2)).toBe(true);
  });

  it('is not gone while it is listed, running or exited', () => {
    expect(containerGone(start, node(30_000, ['run-1']), 'run-1', 2)).toBe(false);
  });

  it('waits two heartbeat intervals (at least 10 s) after the start result', () => {
    expect(containerGone(start, node(9_999, []), 'run-1', 2)).toBe(false);
    expect(containerGone(start, node(10_000, []), 'run-1', 2)).toBe(true);
    expect(containerGone(start, node(39_999, []), 'run-1', 20)).toBe(false);
    expect(containerGone(start, node(40_000, []), 'run-1', 20)).toBe(true);
  });

  it('says nothing about a start not done, refused or unknown, nor a node that never beat', () => {
    for (const s of [
      undefined,
      { status: 'pending' as const },
      { status: 'failed' as const, completedAt: start.completedAt },
    ])
      expect(containerGone(s, node(60_000, []), 'run-1', 2)).toBe(false);
    expect(containerGone(start, undefined, 'run-1', 2)).toBe(false);
    expect(containerGone(start, { containerStats: {} }, 'run-1', 2)).toBe(false);
  });
});
