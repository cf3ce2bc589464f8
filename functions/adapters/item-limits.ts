import { measureItem } from '../core/item-size.js';
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
  const { bytes, issue } = measureItem(item);
  if (issue) throw issue;
  if (bytes > MAX_ITEM_BYTES) throw tooLarge(bytes);
}

/** Throws UnstorableError for update values DynamoDB would refuse (their size alone; the engine checks the sum). */
export function checkUpdateValues(set: Record<string, unknown>): void {
  checkKeys(set);
  const { bytes, issue } = measureItem(set);
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
