import { describe, expect, it } from 'vitest';
import { childEnv, runHostCommand, TailBuffer } from '../../../agent/host-exec.js';

describe('TailBuffer', () => {
  it('keeps the last bytes and says it dropped some', () => {
    const t = new TailBuffer(8);
    for (const part of ['abcd', 'efgh', 'ijkl']) t.push(Buffer.from(part));
    expect(t.text()).toBe('efghijkl');
    expect(t.truncated).toBe(true);
    const small = new TailBuffer(8);
    small.push(Buffer.from('abc'));
    expect([small.text(), small.truncated]).toEqual(['abc', false]);
  });

  it('starts on a character boundary when the cut falls inside a UTF-8 character', () => {
    const t = new TailBuffer(4);
    t.push(Buffer.from('aé€')); // 1 + 2 + 3 bytes: the last 4 are the second byte of é, then €
    expect(t.text()).toBe('€');
    const whole = new TailBuffer(5);
    whole.push(Buffer.from('aé€'));
    expect(whole.text()).toBe('é€');
  });

  it('holds the cap for the text too when invalid bytes decode to U+FFFD', () => {
    const t = new TailBuffer(6);
    t.push(Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa]));
    expect(Buffer.byteLength(t.text())).toBeLessThanOrEqual(6);
  });
});

describe('runHostCommand', () => {
  const options = { timeoutMs: 5_000, maxOutputBytes: 64 * 1024 };

  it('withholds the agent’s API key from the command’s environment', async () => {
    expect(childEnv({ FLEET_API_KEY: 'secret', PATH: '/bin' })).toEqual({ PATH: '/bin' });
    const out = await runHostCommand('echo "key=${FLEET_API_KEY:-none} path=${PATH:+set}"', {
      ...options,
      env: childEnv({ ...process.env, FLEET_API_KEY: 'secret' }),
    });
    expect(out.stdout).toBe('key=none path=set\n');
  });

  it('reads no stdin: a command that waits for input ends at once', async () => {
    const out = await runHostCommand('cat; echo done', options);
    expect(out).toMatchObject({ stdout: 'done\n', exitStatus: 0, timedOut: false });
  });

  it('reports a command killed by a signal as 128 + the signal number, as a shell does', async () => {
    const out = await runHostCommand('kill -TERM $$', options);
    expect(out).toMatchObject({ exitStatus: 143, signal: 'SIGTERM', timedOut: false });
  });

  it('rejects when the shell cannot be started', async () => {
    await expect(runHostCommand('true', { ...options, shell: '/no/such/shell' })).rejects.toThrow(/ENOENT/);
  });
});
