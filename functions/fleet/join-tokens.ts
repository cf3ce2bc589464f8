import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { joinTokenKeys } from '../core/keys.js';
import type { StoreItem } from '../ports/store.js';
import { hashToken } from '../core/tokens.js';

/**
 * Join tokens: bootstrap credentials that let a node register (POST /agent/register) where the
 * API key is required, without handing the API key to every machine. Only the SHA-256 is stored;
 * a token is reusable by any number of nodes until it expires, and issuing another one revokes
 * nothing (several may be live at once, like Docker Swarm's, but each expires on its own).
 */
export const JOIN_TOKEN_PREFIX = 'FLEETJT-1-';

export interface JoinTokenItem extends StoreItem {
  role: 'worker';
  issuedAt: string;
  /** Epoch seconds: DynamoDB TTL deletes it, and readers check it (dynalite has no TTL). */
  expiresAt: number;
}

export async function issueJoinToken(
  ctx: AppContext,
  role: 'worker',
): Promise<{ token: string; expiresAt: number }> {
  const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const now = ctx.now();
  const expiresAt = Math.floor(now / 1000) + ctx.config.JOIN_TOKEN_TTL_SECONDS;
  const item: JoinTokenItem = {
    ...joinTokenKeys.joinToken(hashToken(token)),
    role,
    issuedAt: new Date(now).toISOString(),
    expiresAt,
  };
  await ctx.store.put(item, { notExists: true });
  return { token, expiresAt };
}

/** Whether the bearer credential is a live join token. Looked up by its hash, so nothing secret is compared. */
export async function isLiveJoinToken(ctx: AppContext, token: string): Promise<boolean> {
  if (!token.startsWith(JOIN_TOKEN_PREFIX) || token.length > 200) return false;
  const k = joinTokenKeys.joinToken(hashToken(token));
  const item = await ctx.store.get<JoinTokenItem>(k.pk, k.sk);
  return item !== undefined && item.expiresAt * 1000 > ctx.now();
}

/** The route's extra credential: `Authorization: Bearer FLEETJT-1-...`. */
export async function joinTokenAuth(headers: Record<string, string>, ctx: AppContext): Promise<boolean> {
  const given = /^Bearer\s+(\S+)\s*$/i.exec(headers['authorization'] ?? '')?.[1];
  return given !== undefined && isLiveJoinToken(ctx, given);
}
