import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS, COMPILE_CACHE } from '../../../agent/node-flags.js';

const run = promisify(execFile);
const file = (path: string) => readFile(fileURLToPath(new URL(`../../../${path}`, import.meta.url)), 'utf8');

describe("the agent's Node.js flags: one declaration, used wherever it is installed", () => {
  it("install.sh's unit starts the bundle with exactly these flags and this environment", async () => {
    const script = await file('install/install.sh');
    const execStart = script.split('\n').find((l) => l.startsWith('ExecStart='))!;
    expect(execStart.slice('ExecStart='.length).split(' ')).toEqual([
      '/opt/fleet-agent/bin/node',
      ...AGENT_NODE_FLAGS,
      '/opt/fleet-agent/agent.mjs',
    ]);
    const environment = script
      .split('\n')
      .filter((l) => l.startsWith('Environment='))
      .map((l) => l.slice('Environment='.length));
    expect(environment).toEqual([
      ...Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v}`),
      `NODE_COMPILE_CACHE=/var/lib/fleet-agent/${COMPILE_CACHE}`,
    ]);
  });

  it("the image's entrypoint has the same flags and its ENV the same environment", async () => {
    const containerfile = await file('install/Containerfile');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(containerfile)![1]!;
    expect(JSON.parse(entrypoint)).toEqual([
      '/usr/local/bin/node',
      ...AGENT_NODE_FLAGS,
      '/opt/fleet-agent/agent.mjs',
    ]);
    const env = { ...AGENT_ENV, NODE_COMPILE_CACHE: `/var/lib/fleet-agent/${COMPILE_CACHE}` };
    // ENV's continued lines: `    NAME=value \`, the last without the backslash.
    for (const [k, v] of Object.entries(env))
      expect(containerfile).toMatch(new RegExp(`^\\s+${k}=${v}( \\\\)?$`, 'm'));
  });

  it('this Node.js accepts every flag (an unknown V8 flag would be ignored with a warning, a bad Node option refused)', async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      [...AGENT_NODE_FLAGS, '-e', 'console.log(1 + 1)'],
      {
        env: { ...process.env, ...AGENT_ENV },
      },
    );
    expect(stdout).toBe('2\n');
    expect(stderr).toBe('');
  });
});
