import { timingSafeEqual } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { HttpError, UnauthenticatedError } from '../core/errors.js';
import { keys } from '../core/keys.js';
import { hashToken } from '../core/tokens.js';
import type { NodeItem } from './nodes.js';

function unauthorized(message: string): HttpError {
  return new UnauthenticatedError(message, 'AUTHENTICATION_ERROR', undefined, {
    'www-authenticate': 'Bearer',
  });
}

/** The node a credential belongs to, or undefined; the hashes are compared in constant time. */
export async function nodeOfCredential(ctx: AppContext, token: string): Promise<NodeItem | undefined> {
  const dot = token.lastIndexOf('.');
  if (dot <= 0 || token.length > 512) return undefined;
  const k = keys.node(token.slice(0, dot));
  const node = await ctx.store.get<NodeItem>(k.pk, k.sk);
  const given = Buffer.from(hashToken(token), 'hex');
  const stored = node ? Buffer.from(node.tokenHash, 'hex') : undefined;
  if (!node || !stored || stored.length !== given.length || !timingSafeEqual(stored, given)) return undefined;
  return node;
}

/** One request's headers → its node: the check before the body is parsed serves the handler too. */
const verified = new WeakMap<Record<string, string>, NodeItem>();

/** The node a bearer token belongs to; 401 otherwise. For every route with scope 'agent'. */
export async function authenticateAgent(ctx: AppContext, headers: Record<string, string>): Promise<NodeItem> {
  const known = verified.get(headers);
  if (known) return known;
  const token = /^Bearer\s+(\S+)\s*$/i.exec(headers['authorization'] ?? '')?.[1];
  if (!token) throw unauthorized('Missing agent token');
  const node = await nodeOfCredential(ctx, token);
  if (!node) throw unauthorized('Invalid agent token');
  verified.set(headers, node);
  return node;
}
