import { describe, expect, it } from 'vitest';
import { formatDuration, formatMemory, formatUptime } from '../../../functions/cluster/format.js';

describe('formatting', () => {
  it('writes sizes and durations as the documents do', () => {
    expect([formatMemory(24_576), formatMemory(6_656), formatMemory(512), formatMemory(undefined)]).toEqual([
      '24GB',
      '6.5GB',
      '512MB',
      null,
    ]);
    expect([
      formatDuration(3.2),
      formatDuration(15),
      formatDuration(120),
      formatDuration(125),
      formatDuration(3780),
      formatDuration(-1),
    ]).toEqual(['3.2s', '15s', '2m', '2m 5s', '1h 3m', null]);
    expect(formatUptime((7 * 24 * 60 + 4 * 60 + 23) * 60_000 + 5_000)).toBe('7d 4h 23m');
  });
});
