import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { queryAll, updateIf, type StoreItem } from '../ports/store.js';
import { getInstanceItem, isoNow, type NovitaInstanceItem } from './model.js';
import { INSTANCE_STATUSES, type InstanceStatus } from './status.js';

/**
 * Which managed instances still need attention, and how many there are in each status, without
 * reading every instance ever managed (the records stay: GET /api/instances lists them all).
 *
 *  - A live marker per instance not retired (novitaKeys.liveInstance), written before its record,
 *    with the record's status, whether it got ready and whether Novita has it; the schedule puts a
 *    marker that a crash left stale right (markers are few: they read each record).
 *  - An instance retires once: terminated, migrated away, or gone from Novita. Its record gets
 *    `retiredAt` first, then a retired item (its final status, keyed by `retiredAt`: a retry
 *    rewrites the same item), then its marker goes. A crash in between leaves a marker whose
 *    record is retired: the schedule finishes it.
 *  - The schedule folds retired items older than FOLD_LAG_MS into one totals record with one
 *    conditional write (on the last folded key), so a repeat never adds them twice.
 * Counts = markers + retired items past the fold + totals. No transactions.
 */

export interface LiveInstanceItem extends StoreItem {
  instanceId: string;
  createdAt: string;
  status: InstanceStatus;
  ready: boolean;
  atNovita: boolean;
}

interface RetiredItem extends StoreItem {
  status: InstanceStatus;
  ready: boolean;
}

interface TotalsItem extends StoreItem {
  foldedThrough: string;
  counts: Record<string, number>;
}

/** The marker key no instance id takes: the markers of instances managed before them were written. */
const INDEXED = '#INDEXED';
/** A marker whose record never came (a create that died before it): removed after this. */
const ORPHAN_MS = 10 * 60_000;
/** Retired items this old are folded: longer than any writer between a record and its retired item. */
const FOLD_LAG_MS = 60 * 60_000;
const FOLD_PAGE = 500;
const RETIRED_TTL_S = 7 * 86_400;

export type InstanceCounts = Record<InstanceStatus | 'total' | 'ready', number> & {
  /** Live instances starting up, without and with Novita's id (the jobs of /api/metrics). */
  watching: number;
  watchingAtNovita: number;
};

const markerOf = (i: NovitaInstanceItem): LiveInstanceItem => ({
  ...novitaKeys.liveInstance(i.instanceId),
  instanceId: i.instanceId,
  createdAt: i.createdAt,
  status: i.status,
  ready: !!i.readyAt,
  atNovita: !!i.novitaInstanceId,
});

const same = (a: LiveInstanceItem, b: LiveInstanceItem) =>
  a.status === b.status && a.ready === b.ready && a.atNovita === b.atNovita;

/** Before a new instance's record is written. */
export async function markLive(ctx: AppContext, item: NovitaInstanceItem): Promise<void> {
  await ctx.store.put(markerOf(item));
}

/** A create Novita refused left no record: its marker goes too. */
export async function unmarkLive(ctx: AppContext, instanceId: string): Promise<void> {
  const k = novitaKeys.liveInstance(instanceId);
  await ctx.store.delete(k.pk, k.sk);
}

/** After a record's status (or Novita id) changed; never brings back a marker retirement removed. */
export async function syncLive(ctx: AppContext, item: NovitaInstanceItem): Promise<void> {
  if (isRetired(item)) return;
  const { pk, sk, ...fields } = markerOf(item);
  await updateIf(ctx.store, pk, sk, { set: fields }, { exists: true }).catch((error: unknown) =>
    ctx.logger.warn('instance marker not updated; the schedule puts it right', {
      instanceId: item.instanceId,
      error: error as Error,
    }),
  );
}

/** Retires an instance once: `retiredAt` on the record, the retired item, then the marker goes. */
export async function retireInstance(ctx: AppContext, item: NovitaInstanceItem): Promise<void> {
  let retiredAt = item.retiredAt;
  if (!retiredAt) {
    const at = isoNow(ctx);
    const done = await updateIf<NovitaInstanceItem>(
      ctx.store,
      item.pk,
      item.sk,
      { set: { retiredAt: at } },
      { absent: ['retiredAt'] },
    );
    retiredAt = done ? at : (await getInstanceItem(ctx, item.instanceId))?.retiredAt;
    if (!retiredAt) return;
    if (done) item = done;
  }
  await finishRetired(ctx, { ...item, retiredAt });
}

async function finishRetired(ctx: AppContext, item: NovitaInstanceItem & { retiredAt: string }) {
  const retired: RetiredItem = {
    ...novitaKeys.retiredInstance(item.retiredAt, item.instanceId),
    status: item.status,
    ready: !!item.readyAt,
    // From the write: folded long before (the schedule folds every 15 minutes).
    expiresAt: Math.floor(ctx.now() / 1000) + RETIRED_TTL_S,
  };
  await ctx.store.put(retired);
  await unmarkLive(ctx, item.instanceId);
}

/** The markers of every instance not retired (one query of small items). */
async function liveMarkers(ctx: AppContext): Promise<LiveInstanceItem[]> {
  const markers = await queryAll<LiveInstanceItem>(ctx.store, novitaKeys.liveInstancesPk);
  if (!markers.some((m) => m.sk === INDEXED)) return indexLive(ctx);
  return markers.filter((m) => m.sk !== INDEXED);
}

/**
 * Every instance not retired, read through its marker: finishes retirements a crash left, drops
 * markers whose record never came, and puts stale markers right. For the schedule and the migration.
 */
export async function liveInstances(ctx: AppContext): Promise<NovitaInstanceItem[]> {
  const markers = await liveMarkers(ctx);
  const read = await Promise.all(
    markers.map(async (m) => [m, await getInstanceItem(ctx, m.instanceId)] as const),
  );
  const live: NovitaInstanceItem[] = [];
  for (const [marker, item] of read) {
    if (!item) {
      if (ctx.now() - Date.parse(marker.createdAt) >= ORPHAN_MS) await unmarkLive(ctx, marker.instanceId);
      continue;
    }
    // Terminated or migrated away by a writer that stopped before the retirement: finished here.
    if (isRetired(item)) {
      await retireInstance(ctx, item);
      continue;
    }
    if (!same(marker, markerOf(item))) await syncLive(ctx, item);
    live.push(item);
  }
  return live;
}

const emptyCounts = (): InstanceCounts =>
  ({
    ...Object.fromEntries(INSTANCE_STATUSES.map((s) => [s, 0])),
    total: 0,
    ready: 0,
    watching: 0,
    watchingAtNovita: 0,
  }) as InstanceCounts;

const add = (c: Record<string, number>, status: string, ready: boolean, n = 1) => {
  c[status] = (c[status] ?? 0) + n;
  c['total'] = (c['total'] ?? 0) + n;
  if (ready) c['ready'] = (c['ready'] ?? 0) + n;
};

/** How many managed instances are in each status: the markers, the retired items not folded, the totals. */
export async function instanceCounts(ctx: AppContext): Promise<InstanceCounts> {
  const markers = await liveMarkers(ctx);
  const totals = await readTotals(ctx);
  const retired = await unfolded(ctx, totals.foldedThrough, '\uffff');
  const c = emptyCounts();
  for (const [k, v] of Object.entries(totals.counts)) c[k as keyof InstanceCounts] += v;
  for (const r of retired) add(c, r.status, r.ready);
  for (const m of markers) {
    add(c, m.status, m.ready);
    if (m.status === 'creating' || m.status === 'starting') {
      if (m.atNovita) c.watchingAtNovita++;
      else c.watching++;
    }
  }
  return c;
}

async function readTotals(ctx: AppContext): Promise<TotalsItem> {
  const k = novitaKeys.instanceTotals;
  return (await ctx.store.get<TotalsItem>(k.pk, k.sk)) ?? { ...k, foldedThrough: '', counts: {} };
}

/** Retired items after `after` up to `until` (inclusive), in order; one page when `limit` is given. */
async function unfolded(
  ctx: AppContext,
  after: string,
  until: string,
  limit?: number,
): Promise<RetiredItem[]> {
  if (until <= after) return [];
  const opts = { between: [after || ' ', until] as [string, string] };
  const items = limit
    ? (await ctx.store.query<RetiredItem>(novitaKeys.retiredInstancesPk, { ...opts, limit: limit + 1 })).items
    : await queryAll<RetiredItem>(ctx.store, novitaKeys.retiredInstancesPk, opts);
  return items.filter((r) => r.sk !== after).slice(0, limit);
}

/** Folds retired items older than FOLD_LAG_MS into the totals, a page at a time; returns how many. */
export async function foldRetired(ctx: AppContext): Promise<number> {
  const totals = await readTotals(ctx);
  // Written first by indexLive (which counts what came before; the schedule reads the markers
  // first): until then nothing is folded.
  if (!totals.version) return 0;
  const until = new Date(ctx.now() - FOLD_LAG_MS).toISOString();
  const page = await unfolded(ctx, totals.foldedThrough, until, FOLD_PAGE);
  if (!page.length) return 0;
  const counts = { ...totals.counts };
  for (const r of page) add(counts, r.status, r.ready);
  const k = novitaKeys.instanceTotals;
  const next = { foldedThrough: page.at(-1)!.sk, counts };
  // One write, on the fold point read: a concurrent fold of the same items loses it.
  const written = await updateIf(
    ctx.store,
    k.pk,
    k.sk,
    { set: next },
    { equals: { foldedThrough: totals.foldedThrough } },
  );
  return written ? page.length : 0;
}

/**
 * Once, for instances managed before the markers: reads every record, marks the live ones,
 * finishes the retirements a crash left, and writes the totals of those retired before
 * `retiredAt` existed (terminated or migrated away), then the INDEXED marker, last, so a crash
 * before it runs this again.
 */
async function indexLive(ctx: AppContext): Promise<LiveInstanceItem[]> {
  const all = await queryAll<NovitaInstanceItem>(ctx.store, novitaKeys.instancesPk, { index: 'gsi1' });
  const live: LiveInstanceItem[] = [];
  const counts: Record<string, number> = {};
  for (const item of all) {
    if (item.retiredAt) {
      await finishRetired(ctx, { ...item, retiredAt: item.retiredAt });
      continue;
    }
    if (isRetired(item)) {
      add(counts, item.status, !!item.readyAt);
      continue;
    }
    const marker = markerOf(item);
    await ctx.store.put(marker);
    live.push(marker);
  }
  const k = novitaKeys.instanceTotals;
  await ctx.store.put<TotalsItem>({ ...k, version: 1, foldedThrough: '', counts });
  await ctx.store.put({ ...novitaKeys.liveInstance(INDEXED), instanceId: INDEXED, createdAt: isoNow(ctx) });
  return live;
}

/** Retired, or left so by a version before `retiredAt`: terminated or migrated away. */
const isRetired = (i: NovitaInstanceItem) => !!(i.retiredAt || i.terminatedAt || i.migratedTo);
