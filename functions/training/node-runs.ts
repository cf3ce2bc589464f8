import type { AppContext } from '../core/context.js';
import { decodeKeyCursor, keyPage } from '../core/key-pages.js';
import { trainingKeys } from '../core/keys.js';
import type { RunItem } from './model.js';

/**
 * One node's training runs, latest start first, from the node-run index (gsi2 of the run items,
 * written when a run is placed, kept after it ends): a page reads what it returns, however many
 * jobs and runs the fleet holds.
 */

export const NODE_RUNS_PAGE_MAX = 100;

/** `limit` runs of `nodeId` after `cursor`; `cursor` in the answer is absent on the last page. */
export async function nodeRunPage(
  ctx: AppContext,
  nodeId: string,
  opts: { limit: number; cursor?: string | undefined },
): Promise<{ runs: RunItem[]; cursor?: string }> {
  const after =
    opts.cursor === undefined
      ? undefined
      : decodeKeyCursor(opts.cursor, (sk) => /^\d{4}-\d\d-\d\dT[\d:.]+Z#[\w.-]{1,200}$/.test(sk));
  const page = await keyPage<RunItem>(ctx, trainingKeys.nodeRunsPk(nodeId), {
    index: 'gsi2',
    ascending: false,
    limit: opts.limit,
    after,
    // Start times are ISO (`2…`): '0' is below every key.
    range: after !== undefined ? ['0', after] : undefined,
  });
  return { runs: page.items, ...(page.cursor !== undefined ? { cursor: page.cursor } : {}) };
}
