import { describe, expect, it } from 'vitest';
import { demuxLogs, orderedTail, parseStampedLogs } from '../../../../agent/engine/logs.js';

describe('demuxLogs', () => {
  const frame = (type: number, text: string): Buffer => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it('splits the multiplexed stream and keeps the order in combined', () => {
    const out = demuxLogs(Buffer.concat([frame(1, 'hello\n'), frame(2, 'err\n'), frame(1, 'line 2\n')]));
    expect(out.stdout).toBe('hello\nline 2\n');
    expect(out.stderr).toBe('err\n');
    expect(out.combined).toBe('hello\nerr\nline 2\n');
  });

  it('returns a TTY log as is', () => {
    expect(demuxLogs(Buffer.from('plain text\n')).combined).toBe('plain text\n');
  });

  it('orders stamped lines by the engine stamps, nanoseconds with trimmed zeros included', () => {
    const entries = parseStampedLogs(
      Buffer.concat([
        frame(1, '2026-12-06T03:51:48.0049Z b\n'),
        frame(1, '2026-12-06T03:51:48.00489Z a\n'),
        frame(2, '2026-12-06T03:51:49.5Z late error\n'),
        frame(1, '2026-12-06T03:51:50Z c\n'),
      ]),
    );
    expect(entries.map((e) => e.text)).toEqual(['b', 'a', 'late error', 'c']);
    const out = orderedTail(entries, 10);
    expect(out.text).toBe('a\nb\nlate error\nc\n');
    expect(out.stdout).toBe('b\na\nc\n');
    expect(out.stderr).toBe('late error\n');
  });

  it('keeps stdout and stderr apart where their stamps are too close to order them', () => {
    // Docker stamped this stderr line 0.16 ms before the stdout lines written just before it.
    const entries = parseStampedLogs(
      Buffer.concat([
        frame(1, '2026-12-06T03:51:40.1Z started\n'),
        frame(2, '2026-12-06T03:51:47.592414350Z oops\n'),
        frame(1, '2026-12-06T03:51:47.592572518Z line 1\n'),
        frame(1, '2026-12-06T03:51:47.592577736Z line 2\n'),
      ]),
    );
    expect(orderedTail(entries, 3).text).toBe('line 1\nline 2\noops\n');
    expect(orderedTail(entries, 10).text).toBe('started\nline 1\nline 2\noops\n');
  });

  it('treats whole-second stamps (Podman) as unordered within their second, ordered across seconds', () => {
    const entries = parseStampedLogs(
      Buffer.concat([
        frame(2, '2026-12-06T03:51:57Z early error\n'),
        frame(2, '2026-12-06T03:51:58Z err1\n'),
        frame(1, '2026-12-06T03:51:58Z line 5\n'),
        frame(1, '2026-12-06T03:51:59Z after\n'),
      ]),
    );
    expect(orderedTail(entries, 10).text).toBe('early error\nline 5\nerr1\nafter\n');
    expect(orderedTail(entries, 2).stderr).toBe('early error\nerr1\n');
  });

  it('keeps a TTY log (no frames) in its own order, stamps removed', () => {
    const entries = parseStampedLogs(Buffer.from('2026-12-06T03:51:57.1Z one\n2026-12-06T03:51:57.2Z two\n'));
    expect(orderedTail(entries, 1)).toEqual({ text: 'two\n', stdout: 'two\n', stderr: '' });
  });
});
