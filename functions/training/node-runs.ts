import { ValidationError } from '../core/errors.js';
import type { AppContext } from '../core/context.js';
import { trainingKeys } from '../core/keys.js';
import type { RunItem } from './model.js';

/**
 * One node's training runs, latest start first, from the node-run index (gsi2 of the run items,
 * written when a run is placed, kept after it ends): a page reads what it returns, however many
 * jobs and runs the fleet holds.
 */

export const NODE_RUNS_PAGE_MAX = 100;

/** Opaque to callers: base64url JSON of the last run's index sort key (`<startedAt>#<instanceId>`). */
const encodeCursor = (sk: string) => Buffer.from(JSON.stringify({ a: sk })).toString('base64url');

function decodeCursor(cursor: string): string {
  try {
    if (cursor.length <= 1024 && /^[A-Za-z0-9_-]+$/.test(cursor)) {
      const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
      const a = (parsed as { a?: unknown } | null)?.a;
      if (typeof a === 'string' && /^\d{4}-\d\d-\d\dT[\d:.]+Z#[\w.-]{1,200}$/.test(a)) return a;
    }
  } catch {
    // fall through
  }
  throw new ValidationError(
    [{ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' }],
    400,
  );
}

/** `limit` runs of `nodeId` after `cursor`; `cursor` in the answer is absent on the last page. */
export async function nodeRunPage(
  ctx: AppContext,
  nodeId: string,
  opts: { limit: number; cursor?: string | undefined },
): Promise<{ runs: RunItem[]; cursor?: string }> {
  const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor);
  const runs: RunItem[] = [];
  let from: string | undefined;
  // One more than the page: whether another follows. The inclusive bound returns the cursor's own run first.
  const want = opts.limit + 1 + (after !== undefined ? 1 : 0);
  let read = 0;
  do {
    const page = await ctx.store.query<RunItem>(trainingKeys.nodeRunsPk(nodeId), {
      index: 'gsi2',
      ascending: false,
      // Start times are ISO (`2…`): '0' is below every key.
      ...(after !== undefined ? { between: ['0', after] as [string, string] } : {}),
      limit: want - read,
      ...(from !== undefined ? { cursor: from } : {}),
    });
    read += page.items.length;
    runs.push(...page.items.filter((r) => r.gsi2sk !== after));
    from = page.cursor;
  } while (from !== undefined && read < want);
  const listed = runs.slice(0, opts.limit);
  const last = listed.at(-1)?.gsi2sk;
  return {
    runs: listed,
    ...(runs.length > opts.limit && typeof last === 'string' ? { cursor: encodeCursor(last) } : {}),
  };
}
