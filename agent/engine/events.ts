import type Docker from 'dockerode';
import { LABELS } from '../../protocol/messages.js';
import { engineCall } from './call.js';
import type { EngineEvent } from './types.js';

/** One line of the engine's event stream as an EngineEvent of this node's managed containers; null otherwise. */
export function parseEngineEvent(line: string, nodeName: string): EngineEvent | null {
  let raw: {
    Type?: string;
    Action?: string;
    status?: string;
    id?: string;
    Actor?: { ID?: string; Attributes?: Record<string, string> };
  };
  try {
    raw = JSON.parse(line) as typeof raw;
  } catch {
    return null;
  }
  const attrs = raw.Actor?.Attributes ?? {};
  if (attrs[LABELS.managed] !== 'true' || attrs[LABELS.node] !== nodeName) return null;
  const exit = attrs['exitCode'] ?? attrs['containerExitCode'];
  return {
    action: raw.Action ?? raw.status ?? '',
    containerId: raw.Actor?.ID ?? raw.id ?? '',
    exitCode: exit !== undefined && /^-?\d+$/.test(exit) ? Number(exit) : null,
    labels: attrs,
  };
}

/** Streams this node's managed container events until the stream ends or `signal` aborts. */
export async function watchEngineEvents(
  docker: Docker,
  options: { nodeName: string; openTimeoutMs: number },
  onEvent: (event: EngineEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const filters = {
    type: ['container'],
    label: [`${LABELS.managed}=true`, `${LABELS.node}=${options.nodeName}`],
  };
  const emit = (line: string): void => {
    const event = parseEngineEvent(line, options.nodeName);
    if (event) onEvent(event);
  };
  // The deadline covers opening the stream only: tied to the stream itself, it cut every stream
  // after inspectMs, and the watcher's back-off (reset only after 60 s up) kept it down ever longer.
  const opening = new AbortController();
  const stream = (await engineCall('events', options.openTimeoutMs, async (s) => {
    const onTimeout = (): void => opening.abort(s.reason);
    s.addEventListener('abort', onTimeout, { once: true });
    try {
      return await docker.getEvents({
        filters,
        abortSignal: AbortSignal.any([opening.signal, signal]),
      } as Docker.GetEventsOptions);
    } finally {
      s.removeEventListener('abort', onTimeout);
    }
  })) as NodeJS.ReadableStream & { destroy?: () => void };
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    const onAbortSignal = (): void => {
      stream.destroy?.();
      resolve();
    };
    signal.addEventListener('abort', onAbortSignal, { once: true });
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      let newline: number;
      // Events are newline-delimited JSON; a chunk may hold part of one or several.
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) emit(line);
      }
    });
    stream.on('end', () => {
      signal.removeEventListener('abort', onAbortSignal);
      if (buffered.trim()) emit(buffered.trim());
      resolve();
    });
    stream.on('error', (error: Error) => {
      signal.removeEventListener('abort', onAbortSignal);
      if (signal.aborted) resolve();
      else reject(error);
    });
  });
}
