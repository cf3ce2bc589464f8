import type { AppContext } from '../core/context.js';
import { taskQueueKeys } from '../core/keys.js';
import { conditional, queryAll, type StoreItem, putIfAbsent } from '../ports/store.js';
import { markFree } from '../nodes/node-records.js';

/**
 * Node concurrency guard: a node with max concurrency N has slots 0..N-1; a task holds one while
 * it is assigned or running. A slot is claimed with a conditional put (the item must not exist),
 * so however many placement runners race, a node never holds more tasks than slots. Held slots
 * carry gsi1 keys (the fleet's running tasks, which the scheduled run checks a few pages a run) and gsi2
 * keys by model; a placement reads the slots of the nodes it considers from their own partitions.
 */
export interface SlotItem extends StoreItem {
  nodeId: string;
  slot: number;
  taskId: string;
  model: string;
  claimedAtMs: number;
  /** When the task counts as lost if its node said nothing (copied from the task, so a check needs no task read). */
  deadlineMs?: number;
}

export async function heldSlots(ctx: AppContext): Promise<SlotItem[]> {
  return queryAll<SlotItem>(ctx.store, taskQueueKeys.heldSlotsPk, { index: 'gsi1' });
}

/** The scheduled run's check: held slots a few index pages at a time (SWEEP_PAGES of SWEEP_PAGE). */
export const SWEEP_PAGE = 100;
export const SWEEP_PAGES = 4;

interface SweepCursor extends StoreItem {
  cursor?: string;
}

/**
 * The next held slots to check, from where the last check stopped (a cursor in one record) to at
 * most SWEEP_PAGES pages on; at the index's end the next check starts over. Every slot is checked
 * within (held slots / (SWEEP_PAGES × SWEEP_PAGE)) + 1 runs, and a run reads the same at any scale.
 */
export async function sweepSlots(ctx: AppContext): Promise<SlotItem[]> {
  const key = taskQueueKeys.heldSlotsCursor;
  const start = (await ctx.store.get<SweepCursor>(key.pk, key.sk))?.cursor;
  const page = (cursor?: string) =>
    ctx.store.query<SlotItem>(taskQueueKeys.heldSlotsPk, {
      index: 'gsi1',
      limit: SWEEP_PAGE,
      ...(cursor ? { cursor } : {}),
    });
  const out: SlotItem[] = [];
  let cursor = start;
  for (let i = 0; i < SWEEP_PAGES; i++) {
    // A cursor the store no longer takes (a changed key shape): start over.
    const p = await page(cursor).catch((error: unknown) => {
      if (cursor === undefined || i > 0) throw error;
      ctx.logger.warn('held-slot cursor refused, starting over', { error: error as Error });
      return page();
    });
    out.push(...p.items);
    cursor = p.cursor;
    if (!cursor) break;
  }
  if (cursor !== start) await ctx.store.put<SweepCursor>({ ...key, ...(cursor ? { cursor } : {}) });
  return out;
}

/** The slots one node holds: a query of its own partition, whatever the fleet runs. */
export async function nodeSlots(ctx: AppContext, nodeId: string): Promise<SlotItem[]> {
  return queryAll<SlotItem>(ctx.store, taskQueueKeys.nodeSlot(nodeId, 0).pk);
}

/** The slots of these nodes, one query each. */
export async function slotsOfNodes(ctx: AppContext, nodeIds: Iterable<string>): Promise<SlotItem[]> {
  return (await Promise.all([...new Set(nodeIds)].map((id) => nodeSlots(ctx, id)))).flat();
}

/** The first `limit` held slots of the fleet's index (by node): a bounded look at what runs. */
export async function heldSlotPage(ctx: AppContext, limit: number): Promise<SlotItem[]> {
  return (await ctx.store.query<SlotItem>(taskQueueKeys.heldSlotsPk, { index: 'gsi1', limit })).items;
}

/** Every held slot running `model` (gsi2): what runs it, not the fleet's slots. */
export async function slotsOfModel(ctx: AppContext, model: string): Promise<SlotItem[]> {
  return queryAll<SlotItem>(ctx.store, taskQueueKeys.slotModelPk(model), { index: 'gsi2' });
}

/** At most `limit` held slots running `model` (gsi2): busy nodes serving it, not the fleet's slots. */
export async function slotsRunning(ctx: AppContext, model: string, limit: number): Promise<SlotItem[]> {
  return (await ctx.store.query<SlotItem>(taskQueueKeys.slotModelPk(model), { index: 'gsi2', limit })).items;
}

/** Claims the first free slot of `candidates`; undefined when all are taken. */
export async function claimSlot(
  ctx: AppContext,
  nodeId: string,
  candidates: number[],
  taskId: string,
  model: string,
  deadlineMs?: number,
): Promise<number | undefined> {
  for (const slot of candidates) {
    if (
      await putIfAbsent(ctx.store, {
        ...taskQueueKeys.nodeSlot(nodeId, slot),
        ...taskQueueKeys.heldSlotIndex(nodeId, slot),
        ...taskQueueKeys.slotModelIndex(model, nodeId, slot),
        nodeId,
        slot,
        taskId,
        model,
        claimedAtMs: ctx.now(),
        ...(deadlineMs !== undefined ? { deadlineMs } : {}),
      })
    )
      return slot;
  }
  return undefined;
}

/** Frees the slot only while `taskId` holds it (a later holder is left alone). */
export async function releaseSlot(
  ctx: AppContext,
  nodeId: string,
  slot: number,
  taskId: string,
): Promise<boolean> {
  const k = taskQueueKeys.nodeSlot(nodeId, slot);
  // Undefined when the slot was free already or holds another task.
  const held = await conditional(ctx.store.delete<SlotItem>(k.pk, k.sk, { equals: { taskId } }));
  if (held === undefined) return false;
  // A slot is free again: back in the free-capacity index, with the model the task left resident.
  await markFree(ctx, nodeId, { model: held.model });
  return true;
}

/** Free slot numbers of a node, lowest first. */
export function freeSlots(maxConcurrency: number, held: readonly SlotItem[]): number[] {
  const taken = new Set(held.map((s) => s.slot));
  const out: number[] = [];
  for (let i = 0; i < maxConcurrency; i++) if (!taken.has(i)) out.push(i);
  return out;
}
