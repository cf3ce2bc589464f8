import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { joinTokenKeys } from '../core/keys.js';
import { queryAll, type StoreItem, updateIf } from '../ports/store.js';
import { hashToken } from '../core/tokens.js';

/**
 * Join tokens: bootstrap credentials that let a node register (POST /agent/register) where the
 * API key is required, without handing the API key to every machine. A join token only creates
 * nodes: an existing node re-registers with its own credential or the API key. Only the SHA-256
 * is stored; each token has a public id (listing, revocation), an expiry no later than
 * JOIN_TOKEN_TTL_SECONDS and optionally a number of uses.
 */
export const JOIN_TOKEN_PREFIX = 'FLEETJT-1-';

export interface JoinTokenItem extends StoreItem {
  id: string;
  role: 'worker';
  issuedAt: string;
  /** Epoch seconds: DynamoDB TTL deletes it, and readers check it (dynalite has no TTL). */
  expiresAt: number;
  /** Nodes created with it so far. */
  uses: number;
  /** Absent: any number of nodes until it expires. */
  maxUses?: number;
  /** Scoped to one node name (a rented instance's token): any other name is refused. */
  nodeName?: string;
  /** The rented instance the node is (written on the node it creates). */
  cloud?: CloudNodeFacts;
}

/** What a node that is a rented cloud instance carries: which instance, its price and billing. */
export interface CloudNodeFacts {
  provider: 'novita';
  instanceId: string;
  /** Per hour, in the provider's price units (as its product list gives them). */
  pricePerHour: number;
  spot: boolean;
  productName: string;
  region: string;
}

export interface JoinTokenOptions {
  /** Shorter than JOIN_TOKEN_TTL_SECONDS, never longer. */
  ttlSeconds?: number;
  maxUses?: number;
  nodeName?: string;
  cloud?: CloudNodeFacts;
}

export interface JoinTokenView {
  id: string;
  role: 'worker';
  issued_at: string;
  expires_at: string;
  uses: number;
  max_uses: number | null;
}

export const joinTokenView = (t: JoinTokenItem): JoinTokenView => ({
  id: t.id,
  role: t.role,
  issued_at: t.issuedAt,
  expires_at: new Date(t.expiresAt * 1000).toISOString(),
  uses: t.uses ?? 0,
  max_uses: t.maxUses ?? null,
});

export async function issueJoinToken(
  ctx: AppContext,
  role: 'worker',
  options: JoinTokenOptions = {},
): Promise<{ token: string; item: JoinTokenItem }> {
  const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const id = `jt-${randomBytes(8).toString('hex')}`;
  const now = ctx.now();
  const ttl = Math.min(options.ttlSeconds ?? Infinity, ctx.config.JOIN_TOKEN_TTL_SECONDS);
  const item: JoinTokenItem = {
    ...joinTokenKeys.joinToken(hashToken(token)),
    ...joinTokenKeys.joinTokensIndex(id),
    id,
    role,
    issuedAt: new Date(now).toISOString(),
    expiresAt: Math.floor(now / 1000) + ttl,
    uses: 0,
    ...(options.maxUses !== undefined ? { maxUses: options.maxUses } : {}),
    ...(options.nodeName ? { nodeName: options.nodeName } : {}),
    ...(options.cloud ? { cloud: options.cloud } : {}),
  };
  await ctx.store.put(item, { notExists: true });
  return { token, item };
}

const isLive = (t: JoinTokenItem, now: number) =>
  t.expiresAt * 1000 > now && (t.maxUses === undefined || (t.uses ?? 0) < t.maxUses);

/** The live join token a bearer credential is, looked up by its hash so nothing secret is compared. */
export async function findLiveJoinToken(ctx: AppContext, token: string): Promise<JoinTokenItem | undefined> {
  if (!token.startsWith(JOIN_TOKEN_PREFIX) || token.length > 200) return undefined;
  const k = joinTokenKeys.joinToken(hashToken(token));
  const item = await ctx.store.get<JoinTokenItem>(k.pk, k.sk);
  return item && isLive(item, ctx.now()) ? item : undefined;
}

export async function isLiveJoinToken(ctx: AppContext, token: string): Promise<boolean> {
  return (await findLiveJoinToken(ctx, token)) !== undefined;
}

/**
 * Takes one use of the token for a node it creates; false when it expired, was revoked or is used
 * up meanwhile. Conditional on the count read, so two registrations cannot share the last use.
 */
export async function consumeJoinTokenUse(
  ctx: AppContext,
  token: string,
): Promise<JoinTokenItem | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const item = await findLiveJoinToken(ctx, token);
    if (!item) return undefined;
    const taken = await updateIf<JoinTokenItem>(
      ctx.store,
      item.pk,
      item.sk,
      { add: { uses: 1 } },
      // Tokens issued before uses were counted carry no count yet.
      item.uses === undefined
        ? { exists: true, absent: ['uses'] }
        : { exists: true, equals: { uses: item.uses } },
    );
    if (taken) return taken;
  }
  return undefined;
}

/** Gives a use back when the node it was taken for was not created after all. */
export async function refundJoinTokenUse(ctx: AppContext, item: JoinTokenItem): Promise<void> {
  await updateIf(ctx.store, item.pk, item.sk, { add: { uses: -1 } }, { exists: true });
}

/** Unexpired tokens, used up or not, oldest first (expired ones linger until DynamoDB's TTL removes them). */
export async function listJoinTokens(ctx: AppContext): Promise<JoinTokenItem[]> {
  const now = ctx.now();
  const all = await queryAll<JoinTokenItem>(ctx.store, joinTokenKeys.joinTokensPk, { index: 'gsi1' });
  return all.filter((t) => t.expiresAt * 1000 > now).sort((a, b) => a.issuedAt.localeCompare(b.issuedAt));
}

/** Revokes at once: the token stops registering nodes; nodes it created keep their own credentials. */
export async function revokeJoinToken(ctx: AppContext, id: string): Promise<JoinTokenItem | undefined> {
  const page = await ctx.store.query<JoinTokenItem>(joinTokenKeys.joinTokensPk, {
    index: 'gsi1',
    prefix: id,
    limit: 5,
  });
  const item = page.items.find((t) => t.id === id);
  if (!item) return undefined;
  return ctx.store.delete<JoinTokenItem>(item.pk, item.sk);
}

/** The bearer credential of a request, when there is one. */
export const bearerOf = (headers: Record<string, string>): string | undefined =>
  /^Bearer\s+(\S+)\s*$/i.exec(headers['authorization'] ?? '')?.[1];
