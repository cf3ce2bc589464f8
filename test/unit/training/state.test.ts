import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backoffSeconds,
  canTransition,
  decideAfterAttempt,
  errorMessage,
  JOB_STATUSES,
} from '../../../functions/training/state.js';
import { instanceIdOf, parseInstanceId, runKey, parseRunKey } from '../../../functions/training/model.js';

const policy = { baseSeconds: 30, maxSeconds: 3600 };

describe('job transitions', () => {
  it('allows exactly the documented moves', () => {
    const allowed = JOB_STATUSES.flatMap((from) =>
      JOB_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`),
    );
    expect(allowed.sort()).toEqual(
      [
        'pending→running',
        'running→completed',
        'running→retrying',
        'running→failed',
        'retrying→running',
        'completed→pending',
        'failed→pending',
      ].sort(),
    );
  });
});

describe('after an attempt', () => {
  it('completes on exit 0, whatever the retries used', () => {
    expect(
      decideAfterAttempt({ retryCount: 2, maxRetries: 3 }, 3, { exitCode: 0, logTail: '' }, policy),
    ).toEqual({ kind: 'complete' });
  });

  it('retries a failure while retries are left, with the next attempt and its backoff', () => {
    expect(
      decideAfterAttempt({ retryCount: 0, maxRetries: 3 }, 1, { exitCode: 1, logTail: 'boom' }, policy),
    ).toEqual({
      kind: 'retry',
      retryCount: 1,
      attempt: 2,
      delaySeconds: 30,
      errorMessage: 'Container exited with code 1. Last log lines:\nboom',
    });
    expect(
      decideAfterAttempt({ retryCount: 2, maxRetries: 3 }, 3, { exitCode: 137, logTail: '' }, policy),
    ).toMatchObject({
      kind: 'retry',
      retryCount: 3,
      attempt: 4,
      delaySeconds: 120,
    });
  });

  it('retries a preemption at once without spending a retry, even with none left', () => {
    const lost = { exitCode: null, logTail: '', reason: 'instance reclaimed', preempted: true };
    expect(decideAfterAttempt({ retryCount: 3, maxRetries: 3 }, 4, lost, policy)).toEqual({
      kind: 'retry',
      retryCount: 3,
      attempt: 5,
      delaySeconds: 0,
      errorMessage: 'Preempted: instance reclaimed',
      preempted: true,
    });
  });

  it('fails once max_retries retries are used, with the exit code and the last log lines', () => {
    const logTail = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const d = decideAfterAttempt({ retryCount: 3, maxRetries: 3 }, 4, { exitCode: 2, logTail }, policy);
    expect(d.kind).toBe('fail');
    const message = (d as { errorMessage: string }).errorMessage;
    expect(message.startsWith('Container exited with code 2. Last log lines:\nline 11\n')).toBe(true);
    expect(message.endsWith('line 30')).toBe(true);
    expect(
      decideAfterAttempt({ retryCount: 0, maxRetries: 0 }, 1, { exitCode: 1, logTail: '' }, policy).kind,
    ).toBe('fail');
  });

  it('counts a lost node as a failed attempt with its reason', () => {
    expect(errorMessage({ exitCode: null, logTail: '', reason: 'node n1 went offline during the run' })).toBe(
      'Attempt failed: node n1 went offline during the run',
    );
    expect(
      decideAfterAttempt({ retryCount: 0, maxRetries: 1 }, 1, { exitCode: null, logTail: '' }, policy).kind,
    ).toBe('retry');
  });
});

describe('backoff', () => {
  it('doubles from the base and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffSeconds(n, policy))).toEqual([
      30, 60, 120, 240, 480, 960, 1920, 3600,
    ]);
    expect(backoffSeconds(1, { baseSeconds: 0.2, maxSeconds: 10 })).toBe(1);
  });

  it('never shrinks, never passes the cap, always whole seconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 86_400 }),
        (n, base, cap) => {
          const p = { baseSeconds: base, maxSeconds: cap };
          const a = backoffSeconds(n, p);
          const b = backoffSeconds(n + 1, p);
          expect(Number.isInteger(a)).toBe(true);
          expect(b).toBeGreaterThanOrEqual(a);
          expect(a).toBeLessThanOrEqual(Math.max(1, cap));
        },
      ),
    );
  });
});

describe('run identity', () => {
  it('names a container after its job, firing and attempt, and reads it back', () => {
    const slot = '2025-10-22T02:00:00.000Z';
    const id = instanceIdOf('train-a1b2c3d4', slot, 3);
    expect(id).toBe('train-a1b2c3d4-20251022020000000-a3');
    expect(parseInstanceId(id)).toEqual({ jobId: 'train-a1b2c3d4', slot, attempt: 3 });
    expect(parseInstanceId('4f2a9c0d1e2b')).toBeUndefined();
    expect(parseRunKey(runKey(slot, 12))).toEqual({ slot, attempt: 12 });
  });
});
