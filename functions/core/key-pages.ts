import type { AppContext } from './context.js';
import { ValidationError } from './errors.js';
import type { StoreItem } from '../ports/store.js';

/**
 * A page of one index partition in its sort key's order, after a cursor that is the last sort key
 * listed (node listings by name, a node's runs by start). Read on past DynamoDB's 1 MB pages, so a
 * request reads what it returns. The cursor is opaque to callers: base64url JSON of that key.
 */

const encodeKeyCursor = (sk: string) => Buffer.from(JSON.stringify({ a: sk })).toString('base64url');

/** The sort key a cursor carries; a malformed one, or one `valid` refuses, is a 400. */
export function decodeKeyCursor(cursor: string, valid: (sk: string) => boolean): string {
  try {
    if (cursor.length <= 4096 && /^[A-Za-z0-9_-]+$/.test(cursor)) {
      const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
      const a = (parsed as { a?: unknown } | null)?.a;
      if (typeof a === 'string' && valid(a)) return a;
    }
  } catch {
    // fall through
  }
  throw new ValidationError(
    [{ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' }],
    400,
  );
}

/**
 * `limit` items of `pk` in `index` within `range` (inclusive, as the caller bounds it from `after`),
 * without the item at `after` itself; `cursor` is absent on the last page.
 */
export async function keyPage<T extends StoreItem>(
  ctx: AppContext,
  pk: string,
  opts: {
    index: 'gsi1' | 'gsi2';
    ascending: boolean;
    limit: number;
    after?: string | undefined;
    range?: [string, string] | undefined;
  },
): Promise<{ items: T[]; cursor?: string }> {
  const skOf = (item: T) => item[`${opts.index}sk`];
  const items: T[] = [];
  let from: string | undefined;
  // One more than the page: whether another follows. The inclusive bound returns the cursor's own item first.
  const want = opts.limit + 1 + (opts.after !== undefined ? 1 : 0);
  let read = 0;
  do {
    const page = await ctx.store.query<T>(pk, {
      index: opts.index,
      ascending: opts.ascending,
      ...(opts.range ? { between: opts.range } : {}),
      limit: want - read,
      ...(from !== undefined ? { cursor: from } : {}),
    });
    read += page.items.length;
    items.push(...page.items.filter((item) => skOf(item) !== opts.after));
    from = page.cursor;
  } while (from !== undefined && read < want);
  const listed = items.slice(0, opts.limit);
  const lastItem = listed.at(-1);
  const last = lastItem ? skOf(lastItem) : undefined;
  return {
    items: listed,
    ...(items.length > opts.limit && typeof last === 'string' ? { cursor: encodeKeyCursor(last) } : {}),
  };
}
