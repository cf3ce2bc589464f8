import type Docker from 'dockerode';
import type { RawDiskUsage } from './disk.js';
import {
  ContainerNotFoundError,
  EngineError,
  EngineTimeoutError,
  engineMessage,
  statusCodeOf,
} from './errors.js';

/** Every engine call has its own deadline (Nomad's client does the same). */
export interface EngineTimeouts {
  inspectMs: number;
  createMs: number;
  startMs: number;
  /** Added to the stop command's own grace period. */
  stopExtraMs: number;
  removeMs: number;
  logsMs: number;
  statsMs: number;
  updateMs: number;
  pullMs: number;
  /** docker system df walks every layer: slow on a full disk. */
  diskUsageMs: number;
  pruneMs: number;
}

export const DEFAULT_ENGINE_TIMEOUTS: EngineTimeouts = {
  inspectMs: 10_000,
  createMs: 30_000,
  startMs: 60_000,
  stopExtraMs: 15_000,
  removeMs: 30_000,
  logsMs: 15_000,
  // Docker's stream=false waits ~1 s for a second sample.
  statsMs: 10_000,
  updateMs: 15_000,
  pullMs: 15 * 60_000,
  diskUsageMs: 60_000,
  pruneMs: 120_000,
};

/** dockerode accepts abortSignal on these at runtime; its typings do not say so. */
export interface LooseDocker {
  ping(options: { abortSignal: AbortSignal }): Promise<unknown>;
  version(options: { abortSignal: AbortSignal }): Promise<Docker.DockerVersion>;
  info(options: { abortSignal: AbortSignal }): Promise<DockerInfo>;
  df(options: { abortSignal: AbortSignal }): Promise<RawDiskUsage>;
  pruneImages(options: { filters: Record<string, string[]>; abortSignal: AbortSignal }): Promise<{
    ImagesDeleted?: Array<{ Deleted?: string; Untagged?: string }> | null;
    SpaceReclaimed?: number;
  }>;
}

export interface DockerInfo {
  DockerRootDir?: string;
  Driver?: string;
  DriverStatus?: Array<[string, string]>;
  Runtimes?: Record<string, unknown>;
}

/** Runs one engine call with its own deadline; the call is aborted, not just abandoned, on timeout. */
export async function engineCall<T>(
  op: string,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
  outer?: AbortSignal,
): Promise<T> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
  let onAbort: (() => void) | undefined;
  // Some dockerode paths ignore the signal; the race makes the deadline hold regardless.
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    return await Promise.race([fn(signal), aborted]);
  } catch (error) {
    if (timeout.aborted && !outer?.aborted) {
      throw new EngineTimeoutError(op, `engine ${op} timed out after ${timeoutMs} ms`, undefined, {
        cause: error,
      });
    }
    if (error instanceof EngineError || outer?.aborted) throw error;
    const status = statusCodeOf(error);
    const detail = engineMessage(error);
    if (status === 404 && op.startsWith('container.')) {
      throw new ContainerNotFoundError(op, `engine ${op}: ${detail}`, status, { cause: error });
    }
    throw new EngineError(op, `engine ${op} failed: ${detail}`, status, { cause: error });
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
