import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AgentEvent } from '../../../protocol/messages.js';
import type { EngineDriver } from '../../../agent/engine/types.js';
import { MAX_LINE_CHARS, OutputFollower } from '../../../agent/follow.js';
import { silentLogger } from '../../../agent/log.js';

/** An engine whose followed containers print when the test says so. */
function printingEngine() {
  const streams = new Map<string, { onLine: (l: string) => void; signal: AbortSignal; end: () => void }>();
  const engine = {
    followLogs: (id: string, onLine: (l: string) => void, signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        streams.set(id, { onLine, signal, end: resolve });
        signal.addEventListener('abort', () => resolve(), { once: true });
      }),
  } as unknown as EngineDriver;
  return { engine, streams };
}

type Output = Extract<AgentEvent, { type: 'container.output' }>;

describe('OutputFollower', () => {
  afterEach(() => vi.useRealTimers());

  it('batches lines per flush, caps each batch and counts what it left out', () => {
    vi.useFakeTimers();
    const { engine, streams } = printingEngine();
    const sent: Output[] = [];
    const follower = new OutputFollower({
      engine,
      events: { send: (e) => void sent.push(e as Output) },
      logger: silentLogger,
      flushMs: 500,
      maxLinesPerFlush: 3,
    });
    expect(follower.follow('inst-1', 'c1', 60)).toMatchObject({ started: true });
    const print = streams.get('c1')!.onLine;
    for (const l of ['a', 'b', 'c', 'd', 'e']) print(l);
    vi.advanceTimersByTime(500);
    print('x'.repeat(MAX_LINE_CHARS + 10));
    vi.advanceTimersByTime(500);
    // Nothing printed: no event.
    vi.advanceTimersByTime(500);
    expect(sent.map((e) => [e.instanceId, e.lines, e.dropped])).toEqual([
      ['inst-1', ['a', 'b', 'c'], 2],
      ['inst-1', [`${'x'.repeat(MAX_LINE_CHARS)}…`], 0],
    ]);
    follower.stopAll();
  });

  it('extends the lease on a repeat, stops when it runs out, and sends what is left when the stream ends', () => {
    vi.useFakeTimers();
    let now = 1_000_000;
    const { engine, streams } = printingEngine();
    const sent: Output[] = [];
    const follower = new OutputFollower({
      engine,
      events: { send: (e) => void sent.push(e as Output) },
      logger: silentLogger,
      flushMs: 500,
      now: () => now,
    });
    follower.follow('inst-1', 'c1', 10);
    expect(follower.follow('inst-1', 'c1', 30)).toEqual({ started: false, until: now + 30_000 });
    now += 20_000;
    vi.advanceTimersByTime(500);
    expect(streams.get('c1')!.signal.aborted).toBe(false);
    now += 11_000;
    streams.get('c1')!.onLine('last words');
    vi.advanceTimersByTime(500);
    expect(streams.get('c1')!.signal.aborted).toBe(true);
    expect(sent.flatMap((e) => e.lines)).toEqual(['last words']);
  });

  it('refuses to follow on an engine driver that cannot', () => {
    const follower = new OutputFollower({
      engine: {} as EngineDriver,
      events: { send: () => undefined },
      logger: silentLogger,
    });
    expect(() => follower.follow('inst-1', 'c1', 60)).toThrow(/cannot follow/);
    expect(follower.following).toEqual([]);
  });
});
