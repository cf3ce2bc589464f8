import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { NotFoundError, UnavailableError } from '../core/errors.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { ModelUnavailableError, type ChatModel } from '../ports/chat-model.js';
import { ask, fleetContext, nodeContext } from './ai.js';
import { resolveNode } from '../nodes/nodes.js';

/** This context's model; 503 where none is wired (the embedded runtime without credentials or an endpoint). */
function chatModel(ctx: AppContext): ChatModel {
  if (!ctx.chatModel)
    throw new UnavailableError(
      'No AI model is configured: give the control plane AWS credentials for Bedrock (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and AI_MODEL_ID, or AI_ENDPOINT_URL',
    );
  return ctx.chatModel;
}

const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => s.trim() !== '', 'must not be empty');

const chatBody = z.object({
  message: text(4000),
  context: z.looseObject({ node_id: z.string().min(1).max(128).optional() }).optional(),
});
const troubleshootBody = z.object({
  node_id: z.string().min(1).max(128),
  issue: text(4000).optional(),
});
const answerOut = z.object({ response: z.string(), suggestions: z.array(z.string()) });

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope'> = {
  tags: ['AI'],
  errorStyle: 'fastapi',
  scope: 'user',
};
const responses = {
  404: 'Unknown node',
  503: 'No AI model configured or reachable (disabled, no credentials or access, throttled, timed out)',
};

async function node(ctx: AppContext, nodeId: string) {
  const n = await resolveNode(ctx, nodeId);
  if (!n) throw new NotFoundError(`Node ${nodeId} not found`);
  return n;
}

/** Asks the model; whatever goes wrong upstream is a 503 in our words, logged without the prompt. */
async function answer(ctx: AppContext, state: unknown, request: string, nodeId?: string) {
  if (!ctx.config.AI_ENABLED) throw new UnavailableError('The AI assistant is disabled (AI_ENABLED=false)');
  try {
    const { answer: a, reply } = await ask(ctx, chatModel(ctx), state, request);
    ctx.logger.info('ai answer', {
      model: ctx.config.AI_MODEL_ID,
      nodeId,
      stopReason: reply.stopReason,
      usage: reply.usage,
    });
    return a;
  } catch (error) {
    if (!(error instanceof ModelUnavailableError)) throw error;
    ctx.logger.warn('ai model unavailable', {
      model: ctx.config.AI_MODEL_ID,
      reason: error.reason,
      why: error.message,
    });
    throw new UnavailableError(
      error.message,
      'SERVICE_UNAVAILABLE',
      undefined,
      error.reason === 'throttled' ? { 'retry-after': '5' } : {},
    );
  }
}

/** Fleet Commander's AI Assistant API over Bedrock, grounded in the fleet's recorded state. */
export function aiRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'POST',
      path: '/api/ai/chat',
      summary:
        'Ask the assistant; with context.node_id the answer is grounded in that node, else in the fleet',
      body: chatBody,
      response: answerOut,
      responses,
      handler: async (req, ctx) => {
        const nodeId = req.body.context?.node_id;
        const state = nodeId ? await nodeContext(ctx, await node(ctx, nodeId)) : await fleetContext(ctx);
        return answer(ctx, state, `Question: ${req.body.message.trim()}`, nodeId);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/ai/troubleshoot',
      summary: 'Diagnose a node from its metrics, containers and recent failures',
      body: troubleshootBody,
      response: answerOut.extend({ node_id: z.string() }),
      responses,
      handler: async (req, ctx) => {
        const n = await node(ctx, req.body.node_id);
        const issue = req.body.issue?.trim() ?? 'No specific symptom given: find what is wrong or at risk.';
        const a = await answer(
          ctx,
          await nodeContext(ctx, n),
          `Troubleshoot node ${n.nodeName}. Reported issue: ${issue}\nName the likely causes, from the state, and the fixes.`,
          n.nodeId,
        );
        return { ...a, node_id: n.nodeId };
      },
    }),
  ];
}
