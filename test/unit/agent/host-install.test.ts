import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { shQuote } from '../../../agent/host-install.js';
import { fingerprint, openSshKey } from '../../../agent/ssh-session.js';

const run = promisify(execFile);

describe('host.install helpers', () => {
  it('names a presented key and its fingerprint as OpenSSH does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hostkey-'));
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
      const pub = (await readFile(join(dir, 'k.pub'), 'utf8')).trim().split(' ');
      const blob = Buffer.from(pub[1]!, 'base64');
      expect(openSshKey(blob)).toBe(`${pub[0]} ${pub[1]}`);
      const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'k.pub')]);
      expect(fingerprint(openSshKey(blob))).toBe(stdout.split(' ')[1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('quotes values for sh and env files, quotes included', async () => {
    for (const value of ["it's", 'a b $HOME `x` "y"', '']) {
      const { stdout } = await run('sh', ['-c', `printf %s ${shQuote(value)}`]);
      expect(stdout).toBe(value);
    }
  });
});
