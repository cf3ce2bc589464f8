import { MAX_JSON_DEPTH, numberIssue } from '../core/limits.js';
import { UnstorableError, type StoreItem } from '../ports/store.js';

/** DynamoDB's limits, checked before a write so the caller gets a typed error instead of the engine's. */
export const MAX_ITEM_BYTES = 400 * 1024;
const MAX_PARTITION_KEY_BYTES = 2048;
const MAX_SORT_KEY_BYTES = 1024;
const KEY_FIELDS: [string, number][] = [
  ['pk', MAX_PARTITION_KEY_BYTES],
  ['sk', MAX_SORT_KEY_BYTES],
  ['gsi1pk', MAX_PARTITION_KEY_BYTES],
  ['gsi1sk', MAX_SORT_KEY_BYTES],
  ['gsi2pk', MAX_PARTITION_KEY_BYTES],
  ['gsi2sk', MAX_SORT_KEY_BYTES],
];

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** Whether a key the table could hold: non-empty and within DynamoDB's key sizes. */
export function keyFits(pk: string, sk?: string): boolean {
  const fits = (v: string, max: number) => v.length > 0 && utf8(v) <= max;
  return fits(pk, MAX_PARTITION_KEY_BYTES) && (sk === undefined || fits(sk, MAX_SORT_KEY_BYTES));
}

/**
 * The item's size as DynamoDB counts it (attribute names and values in UTF-8, numbers by their
 * digits, 3 bytes per map or list plus 1 per element), and the first value DynamoDB would refuse.
 * Iterative: a hostile nesting cannot exhaust the stack.
 */
function measure(attributes: Record<string, unknown>): { bytes: number; issue?: UnstorableError } {
  let bytes = 0;
  const stack: { v: unknown; depth: number; field: string }[] = [];
  for (const [name, v] of Object.entries(attributes)) {
    if (v === undefined) continue;
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
      bytes += Math.ceil(String(Math.abs(v)).replace(/[.e+-]|^0+/g, '').length / 2) + 1;
    } else if (typeof v === 'boolean' || v === null) bytes += 1;
    else if (typeof v === 'bigint') bytes += Math.ceil(String(v).length / 2) + 1;
    else if (v instanceof Uint8Array) bytes += v.byteLength;
    else if (typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH)
        return {
          bytes,
          issue: new UnstorableError('too_deep', `${field}: nested deeper than ${MAX_JSON_DEPTH} levels`),
        };
      bytes += 3;
      const entries: [string | undefined, unknown][] =
        v instanceof Set || Array.isArray(v) ? [...v].map((x) => [undefined, x]) : Object.entries(v);
      for (const [k, x] of entries) {
        if (x === undefined) continue;
        bytes += 1 + (k === undefined ? 0 : utf8(k));
        stack.push({ v: x, depth: depth + 1, field });
      }
    }
  }
  return { bytes };
}

function checkKeys(item: Record<string, unknown>): void {
  for (const [field, max] of KEY_FIELDS) {
    const v = item[field];
    if (typeof v === 'string' && (v.length === 0 || utf8(v) > max))
      throw new UnstorableError(
        'key_too_long',
        v.length === 0
          ? `A key of this record is empty (${field})`
          : `A name or id in this request is too long to be a key (over ${max} bytes)`,
      );
  }
}

/** Throws UnstorableError for a whole item DynamoDB would refuse. */
export function checkItem(item: StoreItem): void {
  checkKeys(item);
  const { bytes, issue } = measure(item);
  if (issue) throw issue;
  if (bytes > MAX_ITEM_BYTES) throw tooLarge(bytes);
}

/** Throws UnstorableError for update values DynamoDB would refuse (their size alone; the engine checks the sum). */
export function checkUpdateValues(set: Record<string, unknown>): void {
  checkKeys(set);
  const { bytes, issue } = measure(set);
  if (issue) throw issue;
  if (bytes > MAX_ITEM_BYTES) throw tooLarge(bytes);
}

export const tooLarge = (bytes?: number) =>
  new UnstorableError(
    'item_too_large',
    bytes === undefined
      ? `The record this request writes would exceed the store's ${MAX_ITEM_BYTES / 1024} KB limit`
      : `The record this request writes would be ${Math.ceil(bytes / 1024)} KB; the store's limit is ${MAX_ITEM_BYTES / 1024} KB`,
  );
