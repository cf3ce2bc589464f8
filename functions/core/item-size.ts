import { MAX_JSON_DEPTH, numberIssue } from './limits.js';
import { UnstorableError } from '../ports/store.js';

/**
 * DynamoDB's item size, the unit every read and write is billed by and the 400 KB limit counts.
 * The rules, from "DynamoDB item sizes and formats"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
 * a string is its UTF-8 bytes; a number about 1 byte per two significant digits plus 1; binary its
 * raw bytes; null and boolean 1 byte; a list or map 3 bytes plus 1 byte per element plus its
 * elements; every attribute also costs the UTF-8 bytes of its name (map keys included).
 */
const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

function numberSize(n: number | bigint): number {
  // Significant digits: no sign, no point, no leading or trailing zeros.
  const digits = String(n)
    .replace(/^-/, '')
    .replace(/e[+-]?\d+$/i, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/**
 * The size of an item (or of some of its attributes), and the first value DynamoDB would refuse.
 * Iterative: a hostile nesting cannot exhaust the stack.
 */
export function measureItem(attributes: Record<string, unknown>): { bytes: number; issue?: UnstorableError } {
  let bytes = 0;
  const stack: { v: unknown; depth: number; field: string }[] = [];
  for (const [name, v] of Object.entries(attributes)) {
    if (v === undefined) continue; // the store's marshaller drops undefined values
    bytes += utf8(name);
    stack.push({ v, depth: 0, field: name });
  }
  while (stack.length) {
    const { v, depth, field } = stack.pop()!;
    if (typeof v === 'string') bytes += utf8(v);
    else if (typeof v === 'number') {
      const problem = numberIssue(v);
      if (problem)
        return { bytes, issue: new UnstorableError('number_out_of_range', `${field}: ${problem}`) };
      bytes += numberSize(v);
    } else if (typeof v === 'boolean' || v === null) bytes += 1;
    else if (typeof v === 'bigint') bytes += numberSize(v);
    else if (v instanceof Uint8Array) bytes += v.byteLength;
    else if (typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH)
        return {
          bytes,
          issue: new UnstorableError('too_deep', `${field}: nested deeper than ${MAX_JSON_DEPTH} levels`),
        };
      if (v instanceof Set) {
        // A set is its elements, with no overhead of its own.
        for (const x of v) stack.push({ v: x, depth: depth + 1, field });
        continue;
      }
      bytes += 3;
      const entries: [string | undefined, unknown][] = Array.isArray(v)
        ? v.map((x) => [undefined, x])
        : Object.entries(v);
      for (const [k, x] of entries) {
        if (x === undefined) continue;
        bytes += 1 + (k === undefined ? 0 : utf8(k));
        stack.push({ v: x, depth: depth + 1, field });
      }
    }
  }
  return { bytes };
}

/** Bytes of a whole item as DynamoDB counts them: attribute names plus values. */
export const itemSize = (item: Record<string, unknown>): number => measureItem(item).bytes;
