import { describe, expect, it } from 'vitest';
import { demuxLogs } from '../../../../agent/engine/logs.js';

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
});
