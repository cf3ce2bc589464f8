import * as z from 'zod';
import {
  apiKeyView,
  auditView,
  issueApiKey,
  listApiKeys,
  queryAudit,
  revokeApiKey,
  ROLES,
  type Principal,
} from '../core/access.js';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { reply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'role'> = {
  tags: ['Access'],
  errorStyle: 'fastapi',
  scope: 'user',
  role: 'admin',
};

const keyOut = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  created_by: z.string(),
});

const createKeyBody = z.object({
  name: z.string().trim().min(1).max(100),
  role: z.enum(ROLES),
  expires_at: z.iso.datetime({ offset: true }).optional(),
});

const who = (p: Principal | undefined) =>
  p?.type === 'key'
    ? `${p.name} (${p.keyId})`
    : p?.type === 'user'
      ? `${p.name} (user ${p.subject})`
      : (p?.type ?? 'anonymous');

/** API keys with a role, and the audit log of every state-changing call. */
export function accessRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      role: 'viewer',
      method: 'GET',
      path: '/api/whoami',
      summary: "The caller's key: its name and role (what a client may offer); admin when API auth is off",
      response: z.object({
        name: z.string(),
        key_id: z.string().nullable(),
        role: z.enum(ROLES),
        auth: z.boolean(),
      }),
      handler: async (req, ctx) => {
        const p = req.principal;
        if (p?.type === 'key')
          return { name: p.name, key_id: p.keyId, role: p.role, auth: ctx.config.API_AUTH };
        if (p?.type === 'user')
          return { name: p.name, key_id: null, role: p.role, auth: ctx.config.API_AUTH };
        return { name: 'anonymous', key_id: null, role: 'admin' as const, auth: ctx.config.API_AUTH };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/keys',
      summary:
        'Issue an API key with a role (viewer, operator, admin); the key is shown once, only its hash is kept',
      body: createKeyBody,
      response: keyOut.extend({ key: z.string() }),
      successStatus: 201,
      responses: { 422: 'Invalid name, role or an expiry in the past' },
      handler: async (req, ctx) => {
        if (req.body.expires_at && Date.parse(req.body.expires_at) <= ctx.now()) {
          throw new ValidationError([
            { loc: ['body', 'expires_at'], msg: 'expires_at must be in the future', type: 'value_error' },
          ]);
        }
        const { key, item } = await issueApiKey(
          ctx,
          {
            name: req.body.name,
            role: req.body.role,
            ...(req.body.expires_at ? { expiresAt: req.body.expires_at } : {}),
          },
          who(req.principal),
        );
        return reply(201, { ...apiKeyView(item), key }, { 'cache-control': 'no-store' });
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/keys',
      summary: 'API keys (never the keys themselves), oldest first; the bootstrap key is not listed',
      response: z.object({ keys: z.array(keyOut) }),
      handler: async (_req, ctx) => ({ keys: (await listApiKeys(ctx)).map(apiKeyView) }),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/keys/{key_id}',
      summary: 'Revoke an API key: the next call with it is a 401',
      params: z.object({ key_id: z.string().regex(/^[0-9a-f]{16}$/, 'an API key id (16 hex digits)') }),
      response: keyOut,
      responses: { 404: 'No such key' },
      handler: async (req, ctx) => {
        const gone = await revokeApiKey(ctx, req.params.key_id);
        if (!gone) throw new NotFoundError(`API key ${req.params.key_id} not found`);
        return apiKeyView(gone);
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/audit',
      summary:
        'The audit log: every state-changing call (who, what, targets, outcome, request id), newest first, kept 90 days',
      query: z.object({
        since: z.iso.datetime({ offset: true }).optional(),
        actor: z.string().min(1).max(100).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(100),
        cursor: z.string().min(1).max(2048).optional(),
      }),
      response: z.object({
        entries: z.array(
          z.object({
            at: z.string(),
            request_id: z.string(),
            actor: z.looseObject({ type: z.string() }),
            method: z.string(),
            route: z.string(),
            path: z.string(),
            targets: z.record(z.string(), z.string()),
            status: z.number().int(),
            outcome: z.enum(['ok', 'denied', 'failed']),
          }),
        ),
        cursor: z.string().nullable().describe('Pass as ?cursor= for the next page; null on the last'),
      }),
      handler: async (req, ctx) => {
        const page = await queryAudit(ctx, {
          limit: req.query.limit,
          ...(req.query.since ? { since: new Date(req.query.since).toISOString() } : {}),
          ...(req.query.actor ? { actor: req.query.actor } : {}),
          ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
        }).catch((error: unknown) => {
          // A cursor is opaque: one not from this listing is the caller's mistake.
          if (!req.query.cursor) throw error;
          throw new ValidationError([
            { loc: ['query', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' },
          ]);
        });
        return { entries: page.items.map(auditView), cursor: page.cursor ?? null };
      },
    }),
  ];
}
