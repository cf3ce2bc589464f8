import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { authenticateAgent } from '../nodes/auth.js';
import { markNodeStopped } from '../nodes/node-stop.js';
import { stoppingResponse } from '../../protocol/agent-api.js';

/** POST /agent/stopping, beside the other agent routes (functions/agent-api/routes.ts). */
export function stoppingRoute(common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'>): AnyRoute {
  return route({
    ...common,
    method: 'POST',
    path: '/agent/stopping',
    summary:
      'The agent is stopping (its service or container stopped): the node reads offline at once, nothing new is placed there, and commands sent meanwhile wait on its queue. Not a retire: its next registration brings it back',
    response: stoppingResponse,
    handler: async (req, ctx) => {
      const node = await authenticateAgent(ctx, req.headers);
      await markNodeStopped(ctx, node.nodeId);
      return { ok: true as const, nodeId: node.nodeId, status: 'offline' as const };
    },
  });
}
