import { describe, expect, it } from 'vitest';
import { classifyExecError, execFileText } from '../../../../agent/collectors/exec.js';

// Real child processes: the classification must match what Node's execFile actually rejects with.
const node = process.execPath;

describe('execFileText + classifyExecError', () => {
  it('resolves with stdout and stderr', async () => {
    const result = await execFileText(
      node,
      ['-e', 'process.stdout.write("out"); process.stderr.write("err")'],
      {
        timeoutMs: 10_000,
      },
    );
    expect(result).toEqual({ stdout: 'out', stderr: 'err' });
  });

  it('classifies a missing program as not-found', async () => {
    const error = await execFileText('no-such-program-for-agent-tests', [], { timeoutMs: 10_000 }).catch(
      (e: unknown) => e,
    );
    expect(classifyExecError(error)).toMatchObject({ kind: 'not-found', exitCode: null });
  });

  it('classifies a non-zero exit and keeps its output', async () => {
    const error = await execFileText(
      node,
      ['-e', 'console.log("partial"); console.error("boom"); process.exit(9)'],
      {
        timeoutMs: 10_000,
      },
    ).catch((e: unknown) => e);
    expect(classifyExecError(error)).toMatchObject({
      kind: 'exit',
      exitCode: 9,
      stdout: 'partial\n',
      stderr: 'boom\n',
    });
  });

  it('classifies a timeout', async () => {
    const error = await execFileText(node, ['-e', 'setTimeout(() => {}, 60_000)'], { timeoutMs: 200 }).catch(
      (e: unknown) => e,
    );
    expect(classifyExecError(error)).toMatchObject({ kind: 'timeout', signal: 'SIGKILL', exitCode: null });
  });

  it('classifies anything else as spawn', () => {
    expect(classifyExecError('weird')).toMatchObject({ kind: 'spawn', message: 'weird' });
  });
});
