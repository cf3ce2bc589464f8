import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AppContext } from './context.js';
import { HttpError } from './errors.js';
import { sameSecret } from './limits.js';
import { accessKeys } from './keys.js';
import type { AnyRoute } from './route.js';
import { JwtError, looksLikeJwt, verifyJwt } from './jwt.js';
import { allows, requiredRole, type Principal, type Role } from './roles.js';
import { conditional, type StoreItem } from '../ports/store.js';

/**
 * Who may call what (roles in ./roles.ts). The key in the secrets store (`api-key`) is the
 * bootstrap admin key; others are issued by POST /api/keys and stored as SHA-256 only.
 */
export { allows, requiredRole, ROLES, type Principal, type Role } from './roles.js';

export const BOOTSTRAP_KEY_ID = 'bootstrap';
export const API_KEY_PREFIX = 'FLEETAK-1-';
const KEY_FORMAT = /^FLEETAK-1-([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

export interface ApiKeyItem extends StoreItem {
  keyId: string;
  name: string;
  role: Role;
  keyHash: string;
  createdAt: string;
  /** ISO time after which the key is refused; absent: until revoked. */
  expiresAtIso?: string;
  createdBy: string;
}

export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  expires_at: string | null;
  created_by: string;
}

export const apiKeyView = (k: ApiKeyItem): ApiKeyView => ({
  id: k.keyId,
  name: k.name,
  role: k.role,
  created_at: k.createdAt,
  expires_at: k.expiresAtIso ?? null,
  created_by: k.createdBy,
});

const sha256 = (s: string) => createHash('sha256').update(s).digest();

let bootstrapCache: { value: string | undefined; at: number } | undefined;
async function bootstrapKey(ctx: AppContext): Promise<string | undefined> {
  if (!bootstrapCache || ctx.now() - bootstrapCache.at > 60_000) {
    bootstrapCache = { value: await ctx.secrets.get('api-key'), at: ctx.now() };
  }
  return bootstrapCache.value;
}
export const resetBootstrapKeyCache = () => (bootstrapCache = undefined);

/** The key a bearer credential is, or undefined. Issued keys are read on every call, so a revocation holds at once. */
export async function keyPrincipal(
  ctx: AppContext,
  given: string | undefined,
): Promise<Extract<Principal, { type: 'key' }> | undefined> {
  if (!given || given.length > 512) return undefined;
  const issued = KEY_FORMAT.exec(given);
  if (issued) {
    const k = accessKeys.apiKey(issued[1]!);
    const item = await ctx.store.get<ApiKeyItem>(k.pk, k.sk);
    if (!item || !timingSafeEqual(Buffer.from(item.keyHash, 'hex'), sha256(given))) return undefined;
    if (item.expiresAtIso && Date.parse(item.expiresAtIso) <= ctx.now()) return undefined;
    return { type: 'key', keyId: item.keyId, name: item.name, role: item.role };
  }
  const bootstrap = await bootstrapKey(ctx);
  if (bootstrap !== undefined && sameSecret(given, bootstrap))
    return { type: 'key', keyId: BOOTSTRAP_KEY_ID, name: 'bootstrap', role: 'admin' };
  return undefined;
}

export const bearer = (headers: Record<string, string>) =>
  /^Bearer\s+(.+)$/i.exec(headers['authorization'] ?? '')?.[1]?.trim();

const unauthorized = () =>
  new HttpError(401, 'Invalid or missing API key', 'AUTHENTICATION_ERROR', undefined, {
    'www-authenticate': 'Bearer',
  });

/**
 * The key or signed-in user a bearer credential is, or undefined. A JWT is taken only when an
 * issuer is configured (JWT_ISSUER); one that names no role is a 403, any other fault undefined.
 */
export async function bearerPrincipal(
  ctx: AppContext,
  given: string | undefined,
): Promise<Extract<Principal, { type: 'key' | 'user' }> | undefined> {
  if (given && ctx.config.JWT_ISSUER && given.length <= 16_384 && looksLikeJwt(given)) {
    try {
      return { type: 'user', ...(await verifyJwt(ctx.config, given, ctx.now())) };
    } catch (error) {
      if (!(error instanceof JwtError)) {
        ctx.logger.warn('the JWT issuer keys could not be read', { error });
        return undefined;
      }
      if (error.status === 403) throw new HttpError(403, `Signed in, but ${error.message}`, 'FORBIDDEN');
      ctx.logger.info('bearer JWT refused', { reason: error.message });
      return undefined;
    }
  }
  return keyPrincipal(ctx, given);
}

/** Who calls a user-scope route: 401 without a valid key or token (or the route's own credential). */
export async function authenticate(
  ctx: AppContext,
  headers: Record<string, string>,
  route: Pick<AnyRoute, 'altAuth'>,
): Promise<Principal> {
  if (!ctx.config.API_AUTH) return { type: 'anonymous' };
  const key = await bearerPrincipal(ctx, bearer(headers));
  if (key) return key;
  if (route.altAuth && (await route.altAuth(headers, ctx))) return { type: 'route-credential' };
  throw unauthorized();
}

/** 403 when a key's or user's role is below the route's. */
export function assertRole(principal: Principal, route: Pick<AnyRoute, 'method' | 'role' | 'path'>): void {
  if (principal.type !== 'key' && principal.type !== 'user') return;
  const need = requiredRole(route);
  if (!allows(principal.role, need)) {
    throw new HttpError(
      403,
      `The ${principal.role} role may not call ${route.method} ${route.path}: it needs ${need}`,
      'FORBIDDEN',
    );
  }
}

/** Both: the principal of a call its role allows. */
export async function authorize(
  ctx: AppContext,
  headers: Record<string, string>,
  route: Pick<AnyRoute, 'method' | 'role' | 'altAuth' | 'path'>,
): Promise<Principal> {
  const principal = await authenticate(ctx, headers, route);
  assertRole(principal, route);
  return principal;
}

export async function issueApiKey(
  ctx: AppContext,
  input: { name: string; role: Role; expiresAt?: string },
  createdBy: string,
): Promise<{ key: string; item: ApiKeyItem }> {
  const keyId = randomBytes(8).toString('hex');
  const key = `${API_KEY_PREFIX}${keyId}.${randomBytes(32).toString('base64url')}`;
  const createdAt = new Date(ctx.now()).toISOString();
  const item: ApiKeyItem = {
    ...accessKeys.apiKey(keyId),
    ...accessKeys.apiKeysIndex(createdAt, keyId),
    keyId,
    name: input.name,
    role: input.role,
    keyHash: sha256(key).toString('hex'),
    createdAt,
    ...(input.expiresAt ? { expiresAtIso: new Date(input.expiresAt).toISOString() } : {}),
    createdBy,
  };
  await ctx.store.put(item, { notExists: true });
  return { key, item };
}

export async function listApiKeys(ctx: AppContext): Promise<ApiKeyItem[]> {
  const out: ApiKeyItem[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.store.query<ApiKeyItem>(accessKeys.apiKeysPk, { index: 'gsi1', cursor });
    out.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Deletes the key record: the next call with it is a 401. */
export async function revokeApiKey(ctx: AppContext, keyId: string): Promise<ApiKeyItem | undefined> {
  const k = accessKeys.apiKey(keyId);
  return conditional(ctx.store.delete<ApiKeyItem>(k.pk, k.sk, { exists: true }));
}

// The audit log: every state-changing user call, kept AUDIT_RETENTION_DAYS (DynamoDB TTL).

export const AUDIT_RETENTION_DAYS = 90;

export interface AuditEntry {
  requestId: string;
  /** `node`: an agent call recorded by its route (credential rotation). */
  actor: { type: Principal['type'] | 'node'; id?: string; name?: string; role?: Role };
  method: string;
  route: string;
  path: string;
  targets: Record<string, string>;
  status: number;
}

export interface AuditItem extends StoreItem, AuditEntry {
  at: string;
  outcome: 'ok' | 'denied' | 'failed';
}

export const actorOf = (p: Principal | undefined): AuditItem['actor'] =>
  !p
    ? { type: 'anonymous' }
    : p.type === 'key'
      ? { type: 'key', id: p.keyId, name: p.name, role: p.role }
      : p.type === 'user'
        ? { type: 'user', id: p.subject, name: p.name, role: p.role }
        : { type: p.type };

export async function recordAudit(ctx: AppContext, entry: AuditEntry): Promise<void> {
  const at = new Date(ctx.now()).toISOString();
  const item: AuditItem = {
    ...accessKeys.audit(at, entry.requestId),
    ...entry,
    at,
    outcome: entry.status === 401 || entry.status === 403 ? 'denied' : entry.status < 400 ? 'ok' : 'failed',
    expiresAt: Math.floor(ctx.now() / 1000) + AUDIT_RETENTION_DAYS * 86_400,
  };
  await ctx.store.put(item);
}

export const auditView = (a: AuditItem) => ({
  at: a.at,
  request_id: a.requestId,
  actor: a.actor,
  method: a.method,
  route: a.route,
  path: a.path,
  targets: a.targets,
  status: a.status,
  outcome: a.outcome,
});

/**
 * Newest first, from `since` on; `actor` matches a key id or name. One store page of `limit` per
 * call, filtered: a page may hold fewer entries than `limit` and still carry a cursor.
 */
export async function queryAudit(
  ctx: AppContext,
  options: { since?: string; actor?: string; limit: number; cursor?: string },
): Promise<{ items: AuditItem[]; cursor?: string }> {
  const page = await ctx.store.query<AuditItem>(accessKeys.auditPk, {
    ascending: false,
    limit: options.limit,
    ...(options.cursor ? { cursor: options.cursor } : {}),
    ...(options.since ? { between: [options.since, '\uffff'] as [string, string] } : {}),
  });
  const items = options.actor
    ? page.items.filter((a) => a.actor.id === options.actor || a.actor.name === options.actor)
    : page.items;
  return { items, ...(page.cursor ? { cursor: page.cursor } : {}) };
}
