import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  /** First delay's ceiling. */
  baseMs?: number;
  /** No delay exceeds this. */
  maxMs?: number;
  factor?: number;
  /** [0, 1); injectable for tests. */
  random?: () => number;
}

export const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 30_000, factor: 2 } as const;

/**
 * Delay before retry number `attempt` (0-based): capped exponential with "equal jitter", i.e.
 * uniformly in [cap/2, cap]. Half the cap is kept so a fleet of agents never retries at ~0 ms,
 * the other half spreads them so they do not reconnect in lockstep after an outage.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const max = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const factor = options.factor ?? DEFAULT_BACKOFF.factor;
  const random = options.random ?? Math.random;
  // Clamp the exponent so large attempt counts do not overflow to Infinity/NaN.
  const cap = Math.min(max, base * Math.pow(factor, Math.min(Math.max(attempt, 0), 64)));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Stateful form for loops: next() grows, reset() after a success. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions = {}) {}

  next(): number {
    return backoffDelay(this.attempt++, this.options);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** Sleeps; resolves false instead of throwing when `signal` aborts, so loops can just exit. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
    return true;
  } catch {
    return false;
  }
}

export interface RetryOptions extends BackoffOptions {
  signal?: AbortSignal;
  /** Total tries, the first included. Infinity retries until success or abort. */
  maxAttempts?: number;
  shouldRetry?: (error: unknown) => boolean;
  /** A server-given minimum wait (Retry-After), in ms. */
  minDelayMs?: (error: unknown) => number | undefined;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Calls fn until it succeeds, a non-retryable error, the attempt limit or an abort. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 5;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      const last = attempt + 1 >= maxAttempts;
      if (last || options.signal?.aborted || !(options.shouldRetry?.(error) ?? true)) throw error;
      const wait = Math.min(
        Math.max(backoffDelay(attempt, options), options.minDelayMs?.(error) ?? 0),
        options.maxMs ?? DEFAULT_BACKOFF.maxMs,
      );
      options.onRetry?.(error, attempt + 1, wait);
      if (!(await sleep(wait, options.signal))) throw error;
    }
  }
}
