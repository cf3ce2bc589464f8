import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Input limits shared by the HTTP pipeline and the store, so bad input is a clean 4xx before it
 * reaches DynamoDB (which refuses it with an error the caller cannot act on, or worse).
 */

/** DynamoDB's own limit on nested maps and lists in one item. */
export const MAX_JSON_DEPTH = 32;
/** DynamoDB stores no number smaller in magnitude than this (other than 0). */
export const MIN_NUMBER_MAGNITUDE = 1e-130;

export interface LimitIssue {
  path: (string | number)[];
  msg: string;
  type: 'too_deep' | 'number_out_of_range';
}

/**
 * The first value past a limit: nesting deeper than `maxDepth`, a number beyond ±(2^53−1)
 * (JSON numbers past it lose precision and cannot be stored as given), or a non-zero number
 * smaller than DynamoDB's 1e-130. Iterative, so a hostile nesting cannot exhaust the stack.
 */
export function findLimitIssue(value: unknown, maxDepth = MAX_JSON_DEPTH): LimitIssue | undefined {
  const stack: { v: unknown; path: (string | number)[]; depth: number }[] = [
    { v: value, path: [], depth: 0 },
  ];
  while (stack.length) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'number') {
      const issue = numberIssue(v);
      if (issue) return { path, msg: issue, type: 'number_out_of_range' };
    } else if (v !== null && typeof v === 'object') {
      if (depth >= maxDepth)
        return { path, msg: `Nested deeper than ${maxDepth} levels of objects and arrays`, type: 'too_deep' };
      const entries: [string | number, unknown][] = Array.isArray(v)
        ? v.map((x, i) => [i, x])
        : Object.entries(v);
      for (const [k, x] of entries) stack.push({ v: x, path: [...path, k], depth: depth + 1 });
    }
  }
  return undefined;
}

export function numberIssue(n: number): string | undefined {
  if (!Number.isFinite(n)) return 'Number must be finite';
  if (Math.abs(n) > Number.MAX_SAFE_INTEGER)
    return 'Number must be between -9007199254740991 and 9007199254740991 (±2^53−1)';
  if (n !== 0 && Math.abs(n) < MIN_NUMBER_MAGNITUDE)
    return 'Number is too close to 0 to store (magnitude below 1e-130)';
  return undefined;
}

/**
 * Compares a given secret with the expected one in constant time whatever either holds: the
 * SHA-256 digests are compared, so neither the length nor a non-ASCII byte count leaks or throws.
 */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

const CONTROL = /[\p{Cc}\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/u;

/** Whether a name holds a control, zero-width or bidirectional-override character. */
export const hasControlCharacters = (s: string): boolean => CONTROL.test(s);
