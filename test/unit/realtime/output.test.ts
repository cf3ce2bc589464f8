import { describe, expect, it } from 'vitest';
import { outputFrames } from '../../../functions/realtime/output.js';
import { channelKey } from '../../../functions/realtime/connections.js';

const base = { type: 'output' as const, node_id: 'n1', instance_id: 'i1', timestamp: 't', dropped: 7 };

describe('container output frames', () => {
  it('keeps a batch in one frame while it fits, with its dropped count', () => {
    expect(outputFrames(base, ['a', 'b'])).toEqual([{ ...base, lines: ['a', 'b'] }]);
    expect(outputFrames(base, [])).toEqual([{ ...base, lines: [] }]);
  });

  it('splits a large batch under the frame limit, in order, counting dropped lines once', () => {
    const lines = Array.from({ length: 120 }, (_, i) => `${i}:${'x'.repeat(2000)}`);
    const frames = outputFrames(base, lines);
    expect(frames.length).toBe(3);
    for (const f of frames) expect(Buffer.byteLength(JSON.stringify(f))).toBeLessThanOrEqual(100 * 1024);
    expect(frames.flatMap((f) => f.lines)).toEqual(lines);
    expect(frames.map((f) => f.dropped)).toEqual([0, 0, 7]);
  });

  it('fans a container subscription out apart from its node’s log lines', () => {
    expect(channelKey({ channel: 'logs', nodeId: 'n1' })).toBe('logs#n1');
    expect(channelKey({ channel: 'logs', nodeId: 'n1', instanceId: 'i1' })).toBe('output#n1#i1');
  });
});
