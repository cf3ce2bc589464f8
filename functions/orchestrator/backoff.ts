/**
 * Restart and pull backoff, as Kubernetes does it: a copy that failed to start or exited waits
 * before its replacement, 10 s after the first failure, doubling up to 5 minutes; a copy that
 * ran 10 minutes before it died starts the count again. Pure: the reconciler records the result
 * on the slot (the count survives replacements) and on the dead copy (what the views show).
 */
export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_MAX_MS = 5 * 60_000;
export const BACKOFF_RESET_MS = 10 * 60_000;

export type BackoffReason = 'image_pull_failed' | 'crash_loop';

export interface Backoff {
  reason: BackoffReason;
  /** Failures in a row, this one included. */
  attempt: number;
  /** Epoch ms the copy died (the wait counts from here). */
  since: number;
  /** Epoch ms the replacement may start. */
  nextTryAt: number;
}

/** The agent reports a failed pull as "image X is not on this node and could not be pulled: ...". */
export const isPullFailure = (error: string | undefined): boolean =>
  !!error && /could not be pulled|pull access denied|manifest unknown|image.*not found/i.test(error);

export function backoffReason(status: 'failed' | 'exited', error: string | undefined): BackoffReason {
  return status === 'failed' && isPullFailure(error) ? 'image_pull_failed' : 'crash_loop';
}

export function backoffDelayMs(attempt: number, baseMs = BACKOFF_BASE_MS): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), BACKOFF_MAX_MS);
}

/**
 * The backoff after a copy died at `diedAt`, given the failures in a row before it and when it
 * started running (undefined: it never ran).
 */
export function nextBackoff(input: {
  previousFailures: number;
  status: 'failed' | 'exited';
  error?: string;
  runningSince?: number;
  diedAt: number;
  /** The first wait (RESTART_BACKOFF_SECONDS). */
  baseMs?: number;
}): Backoff {
  const ranLong = input.runningSince !== undefined && input.diedAt - input.runningSince >= BACKOFF_RESET_MS;
  const attempt = (ranLong ? 0 : input.previousFailures) + 1;
  return {
    reason: backoffReason(input.status, input.error),
    attempt,
    since: input.diedAt,
    nextTryAt: input.diedAt + backoffDelayMs(attempt, input.baseMs),
  };
}
