/**
 * The agent bundle's layout (agent/build.ts): agent.mjs, and ssh2 in a file of its own beside it
 * (agent-ssh2.cjs), which only host.install loads, so the idle agent's heap does not hold its
 * source. host.install through the bundle against a real sshd: test/e2e/onboard.e2e.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../../../agent/version.js';
import { buildAgentBundle } from '../../e2e/harness.js';

const run = promisify(execFile);

describe('the agent bundle: agent.mjs, and ssh2 apart beside it', () => {
  let dir: string;
  let main: string;
  let ssh2: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-bundle-'));
    await buildAgentBundle(join(dir, 'agent.mjs'));
    main = await readFile(join(dir, 'agent.mjs'), 'utf8');
    ssh2 = await readFile(join(dir, 'agent-ssh2.cjs'), 'utf8');
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes the two files, and ssh2 is in the second only', async () => {
    expect((await readdir(dir)).sort()).toEqual(['agent-ssh2.cjs', 'agent.mjs']);
    // ssh2's identification string, key format and algorithm names: none of them in the main file.
    for (const mark of ['SSH-2.0-ssh2js', 'OPENSSH PRIVATE KEY', 'chacha20-poly1305@openssh.com']) {
      expect(main).not.toContain(mark);
      expect(ssh2).toContain(mark);
    }
    // The main file loads it on first use, from beside itself.
    expect(main).toContain('import("./agent-ssh2.cjs")');
    expect(main.length).toBeLessThan(700_000);
  });

  it("the ssh2 file loads on its own with ssh2's client, as the bundle's dynamic import sees it", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(join(dir, 'agent-ssh2.cjs'))}); const s = m.default ?? m; console.log(typeof s.Client, typeof new s.Client().connect)`,
      ],
      { cwd: dir },
    );
    expect(stdout.trim()).toBe('function function');
  });

  it('the agent starts without the ssh2 file (only host.install needs it)', async () => {
    const alone = await mkdtemp(join(tmpdir(), 'agent-alone-'));
    try {
      await run('cp', [join(dir, 'agent.mjs'), alone]);
      const { stdout } = await run(process.execPath, [join(alone, 'agent.mjs'), '--version']);
      expect(stdout.trim()).toBe(AGENT_VERSION);
    } finally {
      await rm(alone, { recursive: true, force: true });
    }
  });
});
