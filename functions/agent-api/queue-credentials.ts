import type { AppContext } from '../core/context.js';
import { ConflictError, UnavailableError } from '../core/errors.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { authenticateAgent } from '../nodes/auth.js';
import { nodeQueue } from '../nodes/nodes.js';
import { queueCredentials, type QueueCredentialsResponse } from '../../protocol/messages.js';

/** STS session names: 2-64 of `[\w+=,.@-]`; node ids are made of `[A-Za-z0-9_-]`. */
export const sessionNameFor = (nodeId: string) => `node-${nodeId}`.slice(0, 64);

export async function vendQueueCredentials(
  ctx: AppContext,
  nodeId: string,
): Promise<QueueCredentialsResponse> {
  if (ctx.mode === 'embedded' || !ctx.queue.url) {
    throw new ConflictError(
      'This control plane delivers commands over HTTP (GET /agent/commands); it vends no queue credentials',
      'HTTP_CHANNEL',
    );
  }
  if (!ctx.nodeCredentials) {
    throw new UnavailableError(
      'Node credentials are not configured (AGENT_ROLE_ARN is unset)',
      'NOT_CONFIGURED',
    );
  }
  const queueUrl = await ctx.queue.url(nodeQueue(nodeId));
  let c;
  try {
    c = await ctx.nodeCredentials.forQueue(queueUrl, sessionNameFor(nodeId));
  } catch (error) {
    // A role or trust policy out of step with the stack, or STS throttling: the agent retries a 503.
    ctx.logger.error('vending node queue credentials failed', { nodeId, error: error as Error });
    throw new UnavailableError('Queue credentials are unavailable; try again later', 'UNAVAILABLE');
  }
  return {
    ...c,
    region: ctx.config.AWS_REGION,
    queueUrl,
    ...(ctx.config.AWS_ENDPOINT_URL ? { endpoint: ctx.config.AWS_ENDPOINT_URL } : {}),
  };
}

/** POST /agent/credentials, beside the other agent routes (functions/agent-api/routes.ts). */
export function queueCredentialsRoute(common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'>): AnyRoute {
  return route({
    ...common,
    method: 'POST',
    path: '/agent/credentials',
    summary:
      "Short-lived AWS credentials that may only receive, delete and extend the messages of the node's own queue (the sqs channel)",
    response: queueCredentials,
    responses: {
      409: 'The control plane runs embedded: commands come over GET /agent/commands',
      503: 'No agent role is configured, or STS did not answer',
    },
    handler: async (req, ctx) => {
      const node = await authenticateAgent(ctx, req.headers);
      return vendQueueCredentials(ctx, node.nodeId);
    },
  });
}
