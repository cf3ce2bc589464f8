import { randomUUID } from 'node:crypto';
import { type StoreItem, deleteIf, putIfAbsent, putIf, updateIf } from '../ports/store.js';
import type { AppContext } from './context.js';

/**
 * Unique names by a conditional write on a name record (`guard`), never by a read before the write.
 *
 * A create writes the guard `pending` with its own claim id (attribute_not_exists), then its record,
 * then marks the guard `bound` on condition that its claim id is still there. A second create of
 * the name finds the guard and answers 409 while it is pending (a create in flight) or bound to a
 * live owner. It takes the guard over (on the guard's version, so one taker wins) only when the
 * owner does not hold the name and the guard is bound (a delete died half-way) or pending past
 * the lease (a create died half-way).
 */
export interface NameGuardItem extends StoreItem {
  /** The creation holding the name (a fresh id per claim). */
  claim: string;
  state: 'pending' | 'bound';
  /** Epoch ms of the claim; a pending guard older than the lease may be taken over. */
  claimedAt: number;
}

export interface NameGuardOptions<G extends StoreItem> {
  /** The guard record of the name. */
  key: { pk: string; sk: string };
  /** Fields the guard carries, naming its owner (`jobId`, `imageId`, ...). */
  owner: Record<string, unknown>;
  /** Whether the owner named by a held guard still holds the name. */
  alive: (held: G) => Promise<boolean>;
  /** The 409 to throw when the name is taken. */
  conflict: () => Error;
  /** How long a pending claim (a create in flight) holds the name without its owner record. */
  leaseMs?: number;
}

export interface NameClaim {
  /** Marks the name as held by the owner, now written. False: the claim was lost (taken over after the lease). */
  bind(): Promise<boolean>;
  /** Gives the name back (the owner's write failed); a no-op when the claim was lost. */
  release(): Promise<void>;
}

const DEFAULT_LEASE_MS = 2 * 60_000;

export async function claimName<G extends StoreItem>(
  ctx: AppContext,
  options: NameGuardOptions<G>,
): Promise<NameClaim> {
  const { key } = options;
  const claim = randomUUID();
  const item = (): NameGuardItem => ({
    ...options.owner,
    ...key,
    claim,
    state: 'pending',
    claimedAt: ctx.now(),
  });
  const lease = options.leaseMs ?? DEFAULT_LEASE_MS;
  let claimed = false;
  for (let attempt = 0; attempt < 3 && !claimed; attempt++) {
    if (await putIfAbsent(ctx.store, item())) {
      claimed = true;
      break;
    }
    const held = await ctx.store.get<G & Partial<NameGuardItem>>(key.pk, key.sk);
    if (!held) continue; // released meanwhile: claim again
    const inFlight = held.state === 'pending' && ctx.now() - (held.claimedAt ?? 0) < lease;
    if (inFlight || (await options.alive(held))) throw options.conflict();
    if (
      !(await putIf(
        ctx.store,
        { ...item(), version: (held.version ?? 1) + 1 },
        { version: held.version ?? 1 },
      ))
    )
      throw options.conflict();
    claimed = true;
  }
  if (!claimed) throw options.conflict();
  return {
    bind: async () => {
      const bound = await updateIf(
        ctx.store,
        key.pk,
        key.sk,
        { set: { state: 'bound' } },
        { equals: { claim } },
      );
      return bound !== undefined;
    },
    release: async () => {
      await deleteIf(ctx.store, key.pk, key.sk, { equals: { claim } });
    },
  };
}

/** Frees a name held for `owner` (its delete), whatever claim wrote the guard. */
export async function releaseName(
  ctx: AppContext,
  key: { pk: string; sk: string },
  owner: Record<string, unknown>,
): Promise<void> {
  await deleteIf(ctx.store, key.pk, key.sk, { equals: owner });
}
