import { type StoreItem, deleteIf, putIfAbsent } from '../ports/store.js';
import type { AppContext } from './context.js';

/**
 * A lock item with a lease: written with attribute_not_exists, deleted by its holder when done,
 * taken over once its lease ran out (the holder died). The holder's id is kept in `field` of the
 * item (a migration's `jobId`, a maintenance run's `runId`); TTL removes an item left behind.
 */
export interface LeaseSpec {
  key: { pk: string; sk: string };
  field: string;
  leaseMs: number;
}

export type LeaseItem = StoreItem & { leaseUntil: number } & Record<string, unknown>;

/** Takes the lease for `holder`; returns the current holder's id when someone else holds it. */
export async function acquireLease(
  ctx: AppContext,
  lease: LeaseSpec,
  holder: string,
  extra: Record<string, unknown> = {},
): Promise<string | undefined> {
  const { key, field } = lease;
  for (let tries = 0; tries < 2; tries++) {
    const now = ctx.now();
    if (
      await putIfAbsent(ctx.store, {
        ...key,
        ...extra,
        [field]: holder,
        leaseUntil: now + lease.leaseMs,
        expiresAt: Math.ceil((now + lease.leaseMs) / 1000) + 3600,
      })
    )
      return undefined;
    const held = await ctx.store.get<LeaseItem>(key.pk, key.sk);
    if (held && held.leaseUntil > ctx.now()) return String(held[field]);
    // The holder's lease ran out (it died): take over, unless someone else just did.
    if (held) await ctx.store.delete(key.pk, key.sk, { equals: { [field]: held[field] } }).catch(() => undefined);
  }
  const held = await ctx.store.get<LeaseItem>(key.pk, key.sk);
  return held ? String(held[field]) : 'unknown';
}

/** Gives the lease back, if `holder` still holds it. */
export async function releaseLease(ctx: AppContext, lease: LeaseSpec, holder: string): Promise<void> {
  await deleteIf(ctx.store, lease.key.pk, lease.key.sk, { equals: { [lease.field]: holder } });
}

/** The lease item while its lease runs, else undefined. */
export async function heldLease<T extends LeaseItem = LeaseItem>(
  ctx: AppContext,
  lease: LeaseSpec,
): Promise<T | undefined> {
  const held = await ctx.store.get<T>(lease.key.pk, lease.key.sk);
  return held && held.leaseUntil > ctx.now() ? held : undefined;
}
