/**
 * The job state machine, pure: what a job may become, and what follows an attempt's end.
 *
 *   pending   ── launch ──▶ running ── exit 0 ──▶ completed
 *      ▲                      │  └── exit ≠ 0, retries left ──▶ retrying ── launch ──▶ running
 *      │                      └──── exit ≠ 0, none left ──────▶ failed
 *      └── next firing (completed, failed) or POST /retry (failed) ──┘
 *
 * A node lost during a run counts as an exit with no code.
 */

export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'retrying'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

const ALLOWED: Record<JobStatus, readonly JobStatus[]> = {
  pending: ['running'],
  running: ['completed', 'retrying', 'failed'],
  retrying: ['running'],
  completed: ['pending'],
  failed: ['pending'],
};

export const canTransition = (from: JobStatus, to: JobStatus): boolean => ALLOWED[from].includes(to);

/** Statuses a new firing may start from (anything not busy with a run). */
export const IDLE: readonly JobStatus[] = ['pending', 'completed', 'failed'];

export interface RetryPolicy {
  baseSeconds: number;
  maxSeconds: number;
}

/** Delay before retry `n` (1 for the first): base·2^(n-1), capped, whole seconds (SQS wants integers). */
export function backoffSeconds(n: number, policy: RetryPolicy): number {
  const raw = policy.baseSeconds * 2 ** Math.max(0, n - 1);
  return Math.max(1, Math.ceil(Math.min(raw, policy.maxSeconds)));
}

export interface AttemptOutcome {
  /** null: no exit code (the node was lost, the container never started). */
  exitCode: number | null;
  logTail: string;
  /** Why there is no exit code. */
  reason?: string;
  /** Its rented node was taken back (spot reclaim, the instance lost): retried, never counted against max_retries. */
  preempted?: boolean;
}

export type Decision =
  | { kind: 'complete' }
  | {
      kind: 'retry';
      retryCount: number;
      attempt: number;
      delaySeconds: number;
      errorMessage: string;
      preempted?: boolean;
    }
  | { kind: 'fail'; errorMessage: string };

/** Lines of log kept in error_message. */
export const ERROR_LOG_LINES = 20;

export function errorMessage(outcome: AttemptOutcome, lines = ERROR_LOG_LINES): string {
  const head =
    outcome.exitCode === null
      ? `${outcome.preempted ? 'Preempted' : 'Attempt failed'}: ${outcome.reason ?? 'no exit code'}`
      : `Container exited with code ${outcome.exitCode}`;
  const tail = lastLines(outcome.logTail, lines);
  return tail ? `${head}. Last log lines:\n${tail}` : head;
}

export function lastLines(text: string, n: number): string {
  const tail = text.replace(/\s+$/, '').split('\n').slice(-n).join('\n');
  return tail.trim() ? tail : '';
}

/** What follows attempt `attempt` of a job that has used `retryCount` of `maxRetries` retries. */
export function decideAfterAttempt(
  job: { retryCount: number; maxRetries: number },
  attempt: number,
  outcome: AttemptOutcome,
  policy: RetryPolicy,
): Decision {
  if (outcome.exitCode === 0) return { kind: 'complete' };
  const message = errorMessage(outcome);
  if (outcome.preempted) {
    // At once, wherever there is room; the run resumes from its checkpoint folder.
    return {
      kind: 'retry',
      retryCount: job.retryCount,
      attempt: attempt + 1,
      delaySeconds: 0,
      errorMessage: message,
      preempted: true,
    };
  }
  if (job.retryCount >= job.maxRetries) return { kind: 'fail', errorMessage: message };
  const retryCount = job.retryCount + 1;
  return {
    kind: 'retry',
    retryCount,
    attempt: attempt + 1,
    delaySeconds: backoffSeconds(retryCount, policy),
    errorMessage: message,
  };
}
