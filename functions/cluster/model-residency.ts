/**
 * The model residency index: for each model, the nodes that hold it (`MODELNODES#<model>`/`<nodeId>`),
 * so a question about a model (where is it loaded, unload it everywhere) reads its holders instead
 * of every node. An entry says why the node holds it: `planned` (the control plane's record of what
 * it told the node to serve, setNodeModels) and `reported` (the node's heartbeat runs it); it goes
 * when neither holds. Written only when either changes, never on a heartbeat that reports the same
 * models.
 *
 * A hint, as the free-capacity index is: readers read each holder's own records and decide
 * (online, resident by the settle rule). An offline node keeps its entries (its last word); the
 * readers of loaded models drop it by its liveness record, an unload still reaches it. Entries go
 * when the node is removed (registration.ts deleteNodeRecords).
 */
import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import { deleteIf, queryAll, updateIf, type StoreItem } from '../ports/store.js';

export interface ResidencyItem extends StoreItem {
  nodeId: string;
  model: string;
  planned?: boolean;
  reported?: boolean;
}

export type ResidencyWhy = 'planned' | 'reported';

const other = (why: ResidencyWhy): ResidencyWhy => (why === 'planned' ? 'reported' : 'planned');

/**
 * Marks `add` held by the node for `why` and takes `why` off `drop`; an entry left with no reason is
 * deleted (only while no writer has given it one meanwhile): one write a model either way, two
 * when the entry keeps its other reason.
 */
export async function indexResidency(
  ctx: AppContext,
  nodeId: string,
  why: ResidencyWhy,
  change: { add: Iterable<string>; drop: Iterable<string> },
): Promise<void> {
  const add = new Set(change.add);
  const drop = [...new Set(change.drop)].filter((m) => !add.has(m));
  await Promise.all([
    ...[...add].map((model) => {
      const k = taskQueueKeys.modelNode(model, nodeId);
      return ctx.store.update(k.pk, k.sk, { set: { nodeId, model, [why]: true } }, {});
    }),
    ...drop.map(async (model) => {
      const k = taskQueueKeys.modelNode(model, nodeId);
      // Held for this reason alone: one delete. Else the reason comes off, and an entry another
      // writer emptied meanwhile goes.
      if (await deleteIf(ctx.store, k.pk, k.sk, { absent: [other(why)] })) return;
      const left = await updateIf<ResidencyItem>(ctx.store, k.pk, k.sk, { remove: [why] }, { exists: true });
      if (left && !left.planned && !left.reported)
        await deleteIf(ctx.store, k.pk, k.sk, { absent: ['planned', 'reported'] });
    }),
  ]);
}

/** A removed node's entries (the models of its record and its last sample). */
export async function forgetNode(ctx: AppContext, nodeId: string, models: Iterable<string>): Promise<void> {
  await Promise.all(
    [...new Set(models)].map((model) => {
      const k = taskQueueKeys.modelNode(model, nodeId);
      return ctx.store.delete(k.pk, k.sk);
    }),
  );
}

/**
 * The nodes the index names for any of `models` (one query of each model's partition), in order;
 * with `limit`, the first `limit` of each model's partition (by node id).
 */
export async function holdersOf(
  ctx: AppContext,
  models: Iterable<string>,
  limit?: number,
): Promise<string[]> {
  const lists = await Promise.all(
    [...new Set(models)].map(async (m) =>
      limit === undefined
        ? queryAll<ResidencyItem>(ctx.store, taskQueueKeys.modelNodesPk(m))
        : (await ctx.store.query<ResidencyItem>(taskQueueKeys.modelNodesPk(m), { limit })).items,
    ),
  );
  return [...new Set(lists.flat().map((i) => i.nodeId))].sort();
}

/**
 * A heartbeat's reported models against the stored sample's (`previous`), written only when they
 * differ. `previous` undefined: the stored sample is from before the index (or there is none): the
 * node is indexed whole, its reported and planned models, once (the sample stored then is marked).
 */
export async function indexHeartbeat(
  ctx: AppContext,
  nodeId: string,
  previous: readonly string[] | undefined,
  reported: readonly string[],
): Promise<void> {
  const was = new Set(previous ?? []);
  const now = new Set(reported);
  const add = [...now].filter((m) => !was.has(m));
  const drop = [...was].filter((m) => !now.has(m));
  if (previous === undefined) {
    const k = taskQueueKeys.nodeModels(nodeId);
    const plan = await ctx.store.get<StoreItem & { models?: string[] }>(k.pk, k.sk);
    if (plan?.models?.length) await indexResidency(ctx, nodeId, 'planned', { add: plan.models, drop: [] });
  }
  if (add.length || drop.length) await indexResidency(ctx, nodeId, 'reported', { add, drop });
}
