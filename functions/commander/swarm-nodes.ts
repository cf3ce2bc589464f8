import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { reply } from '../core/http.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { registerRequest } from '../../protocol/messages.js';
import { baseUrlOf, installCommand } from '../system/install.js';
import { issueJoinToken, joinTokenView, listJoinTokens, revokeJoinToken } from '../nodes/join-tokens.js';
import {
  fleetCounts,
  isCordoned,
  isDraining,
  isOnline,
  nodeLabels,
  nodePage,
  nodePageQuery,
  resolveNode,
  setNodeLabelOverrides,
  type NodeItem,
} from '../nodes/nodes.js';

/**
 * The Swarm API's view of the fleet: the control plane as the one manager, every agent's node a
 * worker, join tokens, and node labels (what service constraints match). Services and their
 * containers: `swarm.ts`.
 */

export const swarmCommon: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['Swarm'],
  errorStyle: 'fastapi',
  scope: 'user',
};

const labelKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'label keys: letters, digits, ".", "_", "-"');

function swarmNodeView(n: NodeItem, ctx: AppContext, now: number) {
  return {
    id: n.nodeId,
    hostname: n.nodeName,
    status: isOnline(n, ctx, now) ? ('ready' as const) : ('down' as const),
    // Docker Swarm's words: drain (moving its work away), pause (no new work), active.
    availability: isDraining(n)
      ? ('drain' as const)
      : isCordoned(n)
        ? ('pause' as const)
        : ('active' as const),
    role: 'worker' as const,
    labels: nodeLabels(n),
  };
}

const swarmNodeOut = z.object({
  id: z.string(),
  hostname: z.string(),
  status: z.enum(['ready', 'down']),
  availability: z.enum(['active', 'pause', 'drain']),
  role: z.literal('worker'),
  labels: z.record(z.string(), z.string()),
});

const joinTokenOut = z.object({
  id: z.string(),
  role: z.literal('worker'),
  issued_at: z.string(),
  expires_at: z.string(),
  uses: z.number(),
  max_uses: z.number().nullable(),
});

/** Status, nodes, join tokens and labels, in the order of the route table. */
export function swarmNodeRoutes(): AnyRoute[] {
  const common = swarmCommon;
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/status',
      summary: 'The fleet as a swarm: the control plane manages, every node works',
      response: z.object({
        is_manager: z.literal(true),
        swarm_id: z.string(),
        manager_addr: z.string().nullable(),
        nodes_count: z.number().int(),
        managers_count: z.number().int(),
        workers_count: z.number().int(),
      }),
      handler: async (req, ctx) => {
        // The sweep's fleet counts: one small read, not every node item.
        const { nodes } = await fleetCounts(ctx);
        return {
          is_manager: true as const,
          // Stable per deployment: its table and region.
          swarm_id: createHash('sha256')
            .update(`${ctx.config.AWS_REGION}/${ctx.config.TABLE_NAME}`)
            .digest('hex')
            .slice(0, 25),
          manager_addr: req.headers.host ?? null,
          // The control plane is the one manager (it answers is_manager); every node is a worker.
          nodes_count: nodes + 1,
          managers_count: 1,
          workers_count: nodes,
        };
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/nodes',
      summary: 'Nodes with their labels (the agent’s, with labels set here on top), a page at a time',
      query: z.object(nodePageQuery),
      response: z.array(swarmNodeOut),
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => {
        const now = ctx.now();
        const page = await nodePage(ctx, req.query);
        // The documented body is an array: the next page's cursor goes in a header.
        return reply(
          200,
          page.nodes.map((n) => swarmNodeView(n, ctx, now)),
          page.cursor !== undefined ? { 'x-next-cursor': page.cursor } : {},
        );
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/join-token',
      role: 'admin',
      summary:
        'A join token: lets new nodes register (POST /agent/register) without the API key until it expires, is revoked or is used up; issuing one revokes none',
      query: z.object({
        role: z.enum(['worker', 'manager']).default('worker'),
        /** At most JOIN_TOKEN_TTL_SECONDS. */
        ttl_seconds: z.coerce.number().int().min(60).optional(),
        max_uses: z.coerce.number().int().min(1).max(100_000).optional(),
        /** Node name written into install_command (--name). */
        name: registerRequest.shape.nodeName.optional(),
      }),
      response: z.object({
        token: z.string(),
        role: z.literal('worker'),
        id: z.string(),
        expires_at: z.string(),
        max_uses: z.number().nullable(),
        /** The line to paste on a node: `curl -fsSL <url>/install.sh | sudo sh -s -- --token <token> [--name <name>]`. */
        install_command: z.string(),
      }),
      responses: {
        422: 'role=manager (the control plane is the only manager), or a TTL above JOIN_TOKEN_TTL_SECONDS',
      },
      handler: async (req, ctx) => {
        // No node can manage: the control plane holds all state, so a manager token would promise what nothing does.
        if (req.query.role === 'manager') {
          throw new ValidationError([
            {
              loc: ['query', 'role'],
              msg: 'The control plane is the only manager: nodes join as workers (role=worker)',
              type: 'value_error',
            },
          ]);
        }
        const ttl = req.query.ttl_seconds;
        if (ttl !== undefined && ttl > ctx.config.JOIN_TOKEN_TTL_SECONDS) {
          throw new ValidationError([
            {
              loc: ['query', 'ttl_seconds'],
              msg: `ttl_seconds may not exceed JOIN_TOKEN_TTL_SECONDS (${ctx.config.JOIN_TOKEN_TTL_SECONDS})`,
              type: 'less_than_equal',
            },
          ]);
        }
        const { token, item } = await issueJoinToken(ctx, 'worker', {
          ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
          ...(req.query.max_uses !== undefined ? { maxUses: req.query.max_uses } : {}),
        });
        const view = joinTokenView(item);
        // A credential: never cached by a proxy or the browser.
        return reply(
          200,
          {
            token,
            role: 'worker' as const,
            id: view.id,
            expires_at: view.expires_at,
            max_uses: view.max_uses,
            install_command: installCommand(baseUrlOf(req.headers), token, req.query.name),
          },
          { 'cache-control': 'no-store' },
        );
      },
    }),
    route({
      ...common,
      method: 'GET',
      path: '/api/swarm/join-tokens',
      role: 'admin',
      summary: 'Unexpired join tokens (never the tokens themselves): id, expiry, uses',
      response: z.object({ tokens: z.array(joinTokenOut) }),
      handler: async (_req, ctx) => ({ tokens: (await listJoinTokens(ctx)).map(joinTokenView) }),
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/swarm/join-tokens/{token_id}',
      role: 'admin',
      summary: 'Revoke a join token at once; nodes it created keep their own credentials',
      params: z.object({ token_id: z.string().regex(/^jt-[0-9a-f]{16}$/, 'a join token id (jt-…)') }),
      response: joinTokenOut,
      responses: { 404: 'No such join token' },
      handler: async (req, ctx) => {
        const gone = await revokeJoinToken(ctx, req.params.token_id);
        if (!gone) throw new NotFoundError(`Join token ${req.params.token_id} not found`);
        return joinTokenView(gone);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/swarm/nodes/{node_id}/labels',
      summary: 'Set node labels (null removes one); services whose constraints no longer hold move',
      params: z.object({ node_id: z.string().min(1) }),
      body: z.object({ labels: z.record(labelKey, z.string().max(256).nullable()) }),
      response: swarmNodeOut,
      responses: { 404: 'Unknown node' },
      handler: async (req, ctx) => {
        const node = await resolveNode(ctx, req.params.node_id);
        if (!node) throw new NotFoundError(`Node ${req.params.node_id} not found`);
        // null is kept as a removal, so a label the agent declares stays removed after it re-registers.
        const overrides = { ...(node.labelOverrides ?? {}), ...req.body.labels };
        const updated = await setNodeLabelOverrides(ctx, node.nodeId, overrides);
        await emit(ctx, { type: 'reconcile' });
        return swarmNodeView(updated, ctx, ctx.now());
      },
    }),
  ];
}
