import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { HostExecOutput } from '../protocol/agent-api.js';

/**
 * Runs one shell command on the host for host.exec: `/bin/sh -c`, no stdin, its own process
 * group (so a timeout kills what it started too), each stream capped with its end kept. Nothing
 * here logs the command or its output.
 */

export interface HostExecOptions {
  timeoutMs: number;
  /** Per stream; the last bytes are kept. */
  maxOutputBytes: number;
  shell?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Variables the child does not inherit from the agent: its credentials are the agent's, not the command's. */
const WITHHELD_ENV = ['FLEET_API_KEY'];

export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of WITHHELD_ENV) delete out[name];
  return out;
}

/** Keeps the last `max` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the start. */
  dropped = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.max) {
      const first = this.chunks.shift()!;
      this.size -= first.length;
      this.dropped += first.length;
    }
  }

  get truncated(): boolean {
    return this.dropped > 0 || this.size > this.max;
  }

  /** The kept end as UTF-8 text, at most `max` bytes once encoded, starting on a character boundary. */
  text(): string {
    let buf: Buffer = Buffer.concat(this.chunks);
    if (buf.length > this.max) buf = fromCharBoundary(buf.subarray(buf.length - this.max));
    else if (this.dropped > 0) buf = fromCharBoundary(buf);
    let text = buf.toString('utf8');
    // Invalid bytes decode to U+FFFD (3 bytes each): cut again so the cap holds for the text too.
    const encoded = Buffer.from(text, 'utf8');
    if (encoded.length > this.max)
      text = fromCharBoundary(encoded.subarray(encoded.length - this.max)).toString('utf8');
    return text;
  }
}

/** Skips UTF-8 continuation bytes (10xxxxxx) at the start of a buffer cut in the middle of a character. */
function fromCharBoundary(buf: Buffer): Buffer {
  let i = 0;
  while (i < buf.length && i < 4 && (buf[i]! & 0xc0) === 0x80) i++;
  return buf.subarray(i);
}

/**
 * Resolves when the command's output closes (the shell and whatever still holds its output have
 * exited) or its timeout killed the whole process group; rejects only when the shell could not
 * be started.
 */
export function runHostCommand(command: string, options: HostExecOptions): Promise<HostExecOutput> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const stdout = new TailBuffer(options.maxOutputBytes);
    const stderr = new TailBuffer(options.maxOutputBytes);
    let settled = false;
    let timedOut = false;
    const child = spawn(options.shell ?? '/bin/sh', ['-c', command], {
      // A group of its own: the timeout reaches the children the command started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? childEnv(),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      windowsHide: true,
    });
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is gone already; the shell itself may still be there.
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(function onHostExecTimeout() {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', function onHostExecSpawnError(error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      killGroup();
      reject(error);
    });
    child.once('close', function onHostExecClose(code, signal) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const signum = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
      resolve({
        stdout: stdout.text(),
        stderr: stderr.text(),
        exitStatus: code ?? (signum !== undefined ? 128 + signum : null),
        signal: signal ?? null,
        timedOut,
        truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
        durationMs: Date.now() - started,
      });
    });
  });
}
