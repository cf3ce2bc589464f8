import { timingSafeEqual } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { HttpError } from '../core/errors.js';
import { keys } from '../core/keys.js';
import { hashToken } from '../core/tokens.js';
import type { NodeItem } from './nodes.js';

function unauthorized(message: string): HttpError {
  return new HttpError(401, message, 'AUTHENTICATION_ERROR', undefined, { 'www-authenticate': 'Bearer' });
}

/** The node a bearer token belongs to; 401 otherwise. For every route with scope 'agent'. */
export async function authenticateAgent(ctx: AppContext, headers: Record<string, string>): Promise<NodeItem> {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(headers['authorization'] ?? '')?.[1];
  if (!token) throw unauthorized('Missing agent token');
  const dot = token.lastIndexOf('.');
  if (dot <= 0) throw unauthorized('Invalid agent token');
  const k = keys.node(token.slice(0, dot));
  const node = await ctx.store.get<NodeItem>(k.pk, k.sk);
  const given = Buffer.from(hashToken(token), 'hex');
  const stored = node ? Buffer.from(node.tokenHash, 'hex') : undefined;
  if (!node || !stored || stored.length !== given.length || !timingSafeEqual(stored, given)) {
    throw unauthorized('Invalid agent token');
  }
  return node;
}
