import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Config } from './config.js';
import { outboundRequest } from './outbound.js';
import { ROLES, type Role } from './roles.js';

/**
 * Signed-in users: a bearer JWT from a configured issuer (Cognito, or any OIDC provider), checked
 * here with node's crypto against the issuer's published keys (JWKS), its role taken from one
 * claim. The same code runs on Lambda and in the local runtime, beside API keys: a bearer that is
 * a JWT goes this way, anything else is an API key. Only asymmetric algorithms are accepted, so
 * nobody holding the public keys can mint a token.
 */

export interface JwtUser {
  subject: string;
  name: string;
  role: Role;
}

export class JwtError extends Error {
  override name = 'JwtError';
  /** 401: not a token of the issuer; 403: a valid token whose claim maps to no role. */
  constructor(
    message: string,
    readonly status: 401 | 403 = 401,
  ) {
    super(message);
  }
}

/** The algorithms accepted, with node's name for the digest and the ECDSA signature layout. */
const ALGORITHMS: Record<string, { hash: string; type: 'rsa' | 'ec' }> = {
  RS256: { hash: 'sha256', type: 'rsa' },
  RS384: { hash: 'sha384', type: 'rsa' },
  RS512: { hash: 'sha512', type: 'rsa' },
  ES256: { hash: 'sha256', type: 'ec' },
  ES384: { hash: 'sha384', type: 'ec' },
  ES512: { hash: 'sha512', type: 'ec' },
};

/** Clock differences between the issuer and us. */
const LEEWAY_SECONDS = 60;
const JWKS_MAX_BYTES = 256 * 1024;
/** Keys are read again after this, or on an unknown key id (not more often than KEYS_RETRY_MS). */
const KEYS_TTL_MS = 10 * 60_000;
const KEYS_RETRY_MS = 30_000;

/** Three base64url parts, a JSON header first (`{"` is `eyJ`). */
export const looksLikeJwt = (token: string) => /^eyJ[\w-]*\.[\w-]+\.[\w-]*$/.test(token);

const b64json = (part: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // below
  }
  throw new JwtError('malformed token');
};

interface KeySet {
  keys: Map<string | undefined, { key: KeyObject; alg?: string }[]>;
  at: number;
}

let cache: { source: string; set: KeySet; lastMiss: number } | undefined;
export const resetJwksCache = () => (cache = undefined);

async function fetchKeys(config: Config): Promise<KeySet> {
  let text: string;
  if (config.JWT_JWKS_FILE) {
    text = await readFile(config.JWT_JWKS_FILE, 'utf8');
  } else {
    const url = config.JWT_JWKS_URL ?? `${config.JWT_ISSUER!.replace(/\/+$/, '')}/.well-known/jwks.json`;
    const res = await outboundRequest(url, config.OUTBOUND_ALLOWLIST, {
      method: 'GET',
      headers: { accept: 'application/json' },
      timeoutMs: 5_000,
      maxBodyBytes: JWKS_MAX_BYTES,
    });
    if (res.status !== 200) throw new JwtError(`the issuer's keys answered HTTP ${res.status}`);
    text = res.body ?? '';
  }
  let jwks: { keys?: unknown };
  try {
    jwks = JSON.parse(text) as { keys?: unknown };
  } catch {
    throw new JwtError("the issuer's keys are not JSON");
  }
  const keys = new Map<string | undefined, { key: KeyObject; alg?: string }[]>();
  for (const jwk of Array.isArray(jwks.keys) ? (jwks.keys as JsonWebKey[]) : []) {
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC') continue;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      continue; // a key node cannot read is one no token verifies with
    }
    const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
    keys.set(kid, [
      ...(keys.get(kid) ?? []),
      { key, ...(typeof jwk.alg === 'string' ? { alg: jwk.alg } : {}) },
    ]);
  }
  return { keys, at: Date.now() };
}

async function keysFor(config: Config, kid: string | undefined) {
  const source = config.JWT_JWKS_FILE ?? config.JWT_JWKS_URL ?? config.JWT_ISSUER!;
  const now = Date.now();
  if (!cache || cache.source !== source || now - cache.set.at > KEYS_TTL_MS) {
    cache = { source, set: await fetchKeys(config), lastMiss: 0 };
  }
  let found = cache.set.keys.get(kid);
  // A key id not seen yet: the issuer may have rotated; read again, but not on every bad token.
  if (!found && now - cache.lastMiss > KEYS_RETRY_MS) {
    cache = { source, set: await fetchKeys(config), lastMiss: now };
    found = cache.set.keys.get(kid);
  }
  return found ?? [];
}

/** The role the claim maps to: the highest of its values that names one (JWT_ROLE_MAP, or a role's own name). */
export function roleOf(claim: unknown, roleMap: string): Role | undefined {
  const values = (Array.isArray(claim) ? claim : [claim]).filter((v): v is string => typeof v === 'string');
  const map = new Map<string, Role>();
  for (const pair of roleMap
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [value, role] = pair.split('=').map((s) => s.trim());
    if (value && ROLES.includes(role as Role)) map.set(value, role as Role);
  }
  let best: Role | undefined;
  for (const v of values) {
    const role = map.get(v) ?? (ROLES.includes(v as Role) ? (v as Role) : undefined);
    if (role && (!best || ROLES.indexOf(role) > ROLES.indexOf(best))) best = role;
  }
  return best;
}

/**
 * The user a token names, or JwtError saying why not: signature by a key of the issuer's JWKS
 * with an accepted algorithm, `iss`, `exp`, `nbf`, the audience when configured, and a role.
 */
export async function verifyJwt(config: Config, token: string, nowMs: number): Promise<JwtUser> {
  if (!config.JWT_ISSUER) throw new JwtError('no issuer is configured');
  if (!looksLikeJwt(token)) throw new JwtError('malformed token');
  const [h, p, sig] = token.split('.') as [string, string, string];
  const header = b64json(h);
  const alg = typeof header.alg === 'string' ? header.alg : '';
  const spec = ALGORITHMS[alg];
  if (!spec) throw new JwtError(`algorithm ${alg || 'none'} is not accepted`);
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  const signature = Buffer.from(sig, 'base64url');
  const signed = Buffer.from(`${h}.${p}`);
  const candidates = (await keysFor(config, kid)).filter(
    (k) => k.key.asymmetricKeyType === spec.type && (k.alg === undefined || k.alg === alg),
  );
  const valid = candidates.some((k) =>
    verify(
      spec.hash,
      signed,
      spec.type === 'ec' ? { key: k.key, dsaEncoding: 'ieee-p1363' } : k.key,
      signature,
    ),
  );
  if (!valid) throw new JwtError('signature does not verify with any key of the issuer');

  const claims = b64json(p);
  const now = nowMs / 1000;
  if (claims.iss !== config.JWT_ISSUER) throw new JwtError('issued by another issuer');
  if (typeof claims.exp !== 'number' || claims.exp + LEEWAY_SECONDS <= now) throw new JwtError('expired');
  if (typeof claims.nbf === 'number' && claims.nbf - LEEWAY_SECONDS > now)
    throw new JwtError('not valid yet');
  if (config.JWT_AUDIENCE) {
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(config.JWT_AUDIENCE) && claims.client_id !== config.JWT_AUDIENCE)
      throw new JwtError('meant for another audience');
  }
  if (typeof claims.sub !== 'string' || !claims.sub) throw new JwtError('no subject');
  const role = roleOf(claims[config.JWT_ROLE_CLAIM], config.JWT_ROLE_MAP);
  if (!role) throw new JwtError(`the token's ${config.JWT_ROLE_CLAIM} claim maps to no role`, 403);
  const name = [claims.email, claims.preferred_username, claims.username, claims['cognito:username']].find(
    (v): v is string => typeof v === 'string' && v.length > 0,
  );
  return { subject: claims.sub, name: name ?? claims.sub, role };
}
