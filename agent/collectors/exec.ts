import { execFile } from 'node:child_process';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs: number;
  maxBufferBytes?: number;
}

/**
 * Runs a program without a shell and resolves with its text output.
 * Rejects the way Node's execFile does, so callers can classify with {@link classifyExecError}:
 * `code` is a string ('ENOENT', 'EACCES') when the program could not start, the exit status
 * (a number) when it failed, and `killed` is true when the timeout ended it.
 * The error carries `stdout` and `stderr`.
 */
export type ExecFn = (file: string, args: readonly string[], options: ExecOptions) => Promise<ExecResult>;

export const execFileText: ExecFn = function execFileText(file, args, options) {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      {
        timeout: options.timeoutMs,
        // A wedged driver can leave the tool ignoring SIGTERM.
        killSignal: 'SIGKILL',
        maxBuffer: options.maxBufferBytes ?? 4 * 1024 * 1024,
        encoding: 'utf8',
        windowsHide: true,
      },
      function onExecFileDone(error, stdout, stderr) {
        if (error) {
          reject(Object.assign(error, { stdout, stderr }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
};

export type ExecFailureKind = 'not-found' | 'timeout' | 'exit' | 'spawn';

export interface ExecFailure {
  kind: ExecFailureKind;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  message: string;
}

/** Turns whatever an {@link ExecFn} rejected with into a plain description. */
export function classifyExecError(error: unknown): ExecFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const code = e['code'];
  const stdout = typeof e['stdout'] === 'string' ? e['stdout'] : '';
  const stderr = typeof e['stderr'] === 'string' ? e['stderr'] : '';
  const signal = typeof e['signal'] === 'string' ? e['signal'] : null;
  const message = error instanceof Error ? error.message : String(error);
  const base = { stdout, stderr, signal, message };
  if (code === 'ENOENT') return { ...base, kind: 'not-found', exitCode: null };
  if (e['killed'] === true) return { ...base, kind: 'timeout', exitCode: null };
  if (typeof code === 'number') return { ...base, kind: 'exit', exitCode: code };
  // Killed by a signal we did not send, or could not start (EACCES, EAGAIN...).
  return { ...base, kind: signal !== null ? 'exit' : 'spawn', exitCode: null };
}
