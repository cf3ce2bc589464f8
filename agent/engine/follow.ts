import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import { engineCall } from './call.js';
import { orderedTail, parseStampedLogs, type LogTail } from './logs.js';

/**
 * Follows a container's output from now on (no earlier lines), calling `onLine` per complete line
 * of either stream until the container's log ends or `signal` aborts.
 */
export async function followContainerLogs(
  docker: Docker,
  id: string,
  onLine: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  if (signal.aborted) return;
  const raw = (await docker.getContainer(id).logs({
    follow: true,
    stdout: true,
    stderr: true,
    tail: 0,
    abortSignal: signal,
  })) as unknown as NodeJS.ReadableStream & { destroy?: () => void };
  // One decoder per stream: a character may be split across frames.
  const decoders = [new StringDecoder('utf8'), new StringDecoder('utf8')];
  const partial = ['', ''];
  const text = (stream: number, bytes: Buffer) => {
    const parts = (partial[stream]! + decoders[stream]!.write(bytes)).split('\n');
    partial[stream] = parts.pop() ?? '';
    for (const p of parts) onLine(p.replace(/\r$/, ''));
  };
  // Non-TTY containers' output is multiplexed (8-byte frame headers); a TTY's is raw.
  let framed: boolean | undefined;
  let pending = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const end = () => {
      signal.removeEventListener('abort', onAbort);
      for (const p of partial) if (p) onLine(p);
      partial.fill('');
      resolve();
    };
    const onAbort = () => {
      raw.destroy?.();
      end();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    raw.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (framed === undefined) {
        if (pending[0]! <= 2 && pending.length < 8) return;
        framed = pending[0]! <= 2 && pending.readUIntBE(1, 3) === 0;
      }
      if (!framed) {
        text(0, pending);
        pending = Buffer.alloc(0);
        return;
      }
      while (pending.length >= 8) {
        const size = pending.readUInt32BE(4);
        if (pending.length < 8 + size) break;
        text(pending[0] === 2 ? 1 : 0, pending.subarray(8, 8 + size));
        pending = pending.subarray(8 + size);
      }
    });
    raw.on('end', end);
    raw.on('error', end);
  });
}

/** Lines read beyond the asked tail: the engine cuts its tail in its own order (see {@link readLogTail}). */
const LOG_MARGIN_LINES = 32;

/** The last `tail` lines of a container, stdout and stderr in the order they were written. */
export async function readLogTail(
  docker: Docker,
  id: string,
  tail: number,
  timeoutMs: number,
): Promise<LogTail> {
  // A few lines more than asked: the engine cuts its tail in its own order, which may have put a
  // line of the other stream just before the cut.
  const buffer = await engineCall('container.logs', timeoutMs, (s) =>
    docker.getContainer(id).logs({
      stdout: true,
      stderr: true,
      timestamps: true,
      tail: tail + LOG_MARGIN_LINES,
      follow: false,
      abortSignal: s,
    }),
  );
  // A container removed while its logs are read can answer a JSON object instead of a stream.
  const raw = Buffer.isBuffer(buffer)
    ? buffer
    : typeof buffer === 'string'
      ? Buffer.from(buffer)
      : Buffer.alloc(0);
  return orderedTail(parseStampedLogs(raw), tail);
}
