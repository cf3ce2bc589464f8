import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import { getInstanceItem, isoNow, type NovitaInstanceItem } from './model.js';

/**
 * Which burst instances are live, and which ended today, without reading every instance ever
 * rented (those records stay on gsi1 for GET /api/instances, which lists every managed instance).
 * A small marker per live instance (novitaKeys.liveBurst) is written before the instance record
 * and removed after the record is marked terminated, once an ended marker for that day is written.
 * No transactions: a crash between two of these writes leaves a state readers finish or skip.
 */

interface LiveBurstItem extends StoreItem {
  instanceId: string;
  createdAt: string;
}

/** What today's spend needs of an instance given back; the record's fields never change after. */
export interface EndedBurstItem extends StoreItem {
  instanceId: string;
  createdAt: string;
  terminatedAt: string;
  price: number;
  gpuNum: number;
}

/** A live marker's sort key that no instance id takes: the markers of older instances were written. */
const INDEXED = '#INDEXED';
/** A marker whose record never came (a create that died before its record): removed after this. */
const ORPHAN_MS = 10 * 60_000;
/** Ended markers are read on their own day only. */
const ENDED_TTL_S = 2 * 86_400;

export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const isBurst = (i: Pick<NovitaInstanceItem, 'burstFor' | 'burstModel'>) =>
  i.burstFor !== undefined || i.burstModel !== undefined;

/** Before a burst instance's record is written. */
export async function markLiveBurst(ctx: AppContext, instanceId: string, createdAt: string): Promise<void> {
  const marker: LiveBurstItem = { ...novitaKeys.liveBurst(instanceId), instanceId, createdAt };
  await ctx.store.put(marker);
}

/** The record of a create Novita refused is gone: its marker goes too. */
export async function unmarkLiveBurst(ctx: AppContext, instanceId: string): Promise<void> {
  const k = novitaKeys.liveBurst(instanceId);
  await ctx.store.delete(k.pk, k.sk);
}

/** After the record is marked terminated: the ended marker first, then the live one goes. Idempotent. */
export async function settleEndedBurst(
  ctx: AppContext,
  item: NovitaInstanceItem & { terminatedAt: string },
): Promise<void> {
  const endedAt = Date.parse(item.terminatedAt);
  const ended: EndedBurstItem = {
    ...novitaKeys.endedBurst(utcDay(endedAt), item.instanceId),
    instanceId: item.instanceId,
    createdAt: item.createdAt,
    terminatedAt: item.terminatedAt,
    price: item.price,
    gpuNum: item.gpuNum,
    expiresAt: Math.floor(endedAt / 1000) + ENDED_TTL_S,
  };
  await ctx.store.put(ended);
  await unmarkLiveBurst(ctx, item.instanceId);
}

/** Every burst instance not given back (training or model): one small query plus a read per live instance. */
export async function liveBurstInstances(ctx: AppContext): Promise<NovitaInstanceItem[]> {
  const markers = await queryAll<LiveBurstItem>(ctx.store, novitaKeys.liveBurstsPk);
  if (!markers.some((m) => m.sk === INDEXED)) return indexLiveBursts(ctx);
  const live: NovitaInstanceItem[] = [];
  const items = await Promise.all(
    markers
      .filter((m) => m.sk !== INDEXED)
      .map(async (m) => [m, await getInstanceItem(ctx, m.instanceId)] as const),
  );
  for (const [marker, item] of items) {
    if (!item) {
      if (ctx.now() - Date.parse(marker.createdAt) >= ORPHAN_MS)
        await unmarkLiveBurst(ctx, marker.instanceId);
      continue;
    }
    // A give-back that stopped after marking the record: finished here.
    if (item.terminatedAt) await settleEndedBurst(ctx, { ...item, terminatedAt: item.terminatedAt });
    else live.push(item);
  }
  return live;
}

/** Burst instances given back on today's (UTC) date. */
export async function endedBurstsToday(ctx: AppContext): Promise<EndedBurstItem[]> {
  return queryAll<EndedBurstItem>(ctx.store, novitaKeys.endedBurstsPk(utcDay(ctx.now())));
}

/**
 * Once, for instances rented before the markers existed: reads every managed instance and writes
 * the markers of the live bursts and of today's ended ones, then the INDEXED marker (last, so a
 * crash before it runs this again).
 */
async function indexLiveBursts(ctx: AppContext): Promise<NovitaInstanceItem[]> {
  const all = await queryAll<NovitaInstanceItem>(ctx.store, novitaKeys.instancesPk, { index: 'gsi1' });
  const live: NovitaInstanceItem[] = [];
  const today = utcDay(ctx.now());
  for (const item of all.filter(isBurst)) {
    if (!item.terminatedAt) {
      await markLiveBurst(ctx, item.instanceId, item.createdAt);
      live.push(item);
    } else if (utcDay(Date.parse(item.terminatedAt)) === today) {
      await settleEndedBurst(ctx, { ...item, terminatedAt: item.terminatedAt });
    }
  }
  await ctx.store.put({ ...novitaKeys.liveBurst(INDEXED), instanceId: INDEXED, createdAt: isoNow(ctx) });
  return live;
}
