import * as z from 'zod';
import { NotFoundError } from '../core/errors.js';
import { route, type AnyRoute } from '../core/route.js';
import { resolveNode } from '../nodes/nodes.js';
import { runView } from './model.js';
import { NODE_RUNS_PAGE_MAX, nodeRunPage } from './node-runs.js';
import { runResponse } from './schemas.js';

/** GET /api/nodes/{node_id}/runs: one node's training runs (node-runs.ts), beside the node's own routes. */
export function nodeRunRoutes(): AnyRoute[] {
  return [
    route({
      tags: ['Nodes'],
      errorStyle: 'fastapi',
      scope: 'user',
      method: 'GET',
      path: '/api/nodes/{node_id}/runs',
      summary: 'Training runs placed on a node (id or name), latest start first, a page at a time',
      params: z.object({ node_id: z.string().min(1) }),
      query: z.object({
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(NODE_RUNS_PAGE_MAX)
          .default(20)
          .describe(`Runs a page (1-${NODE_RUNS_PAGE_MAX}, default 20)`),
        cursor: z.string().min(1).max(1024).optional().describe("A page's `next_cursor`: the runs after it"),
      }),
      response: z.object({
        node_id: z.string(),
        runs: z.array(runResponse),
        next_cursor: z.string().nullable().describe('For the next page; null on the last'),
      }),
      responses: { 404: 'Unknown node', 400: 'Bad limit or cursor' },
      handler: async (req, ctx) => {
        const node = await resolveNode(ctx, req.params.node_id);
        if (!node) throw new NotFoundError(`Node ${req.params.node_id} not found`);
        const page = await nodeRunPage(ctx, node.nodeId, {
          limit: req.query.limit,
          cursor: req.query.cursor,
        });
        return { node_id: node.nodeId, runs: page.runs.map(runView), next_cursor: page.cursor ?? null };
      },
    }),
  ];
}
