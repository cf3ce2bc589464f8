import * as z from 'zod';
import { emit, type AppEventInput } from '../core/events.js';
import { clientSignal } from '../core/client-signal.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { applyResult } from './command-appliers.js';
import { applyContainerStates, containerExited } from '../orchestrator/observation.js';
import { recordAudit } from '../core/access.js';
import type { AppContext } from '../core/context.js';
import { reply } from '../core/http.js';
import { agentEventBlobKey } from '../cluster/outputs.js';
import { getTask } from '../cluster/tasks.js';
import { authenticateAgent, nodeOfCredential } from '../nodes/auth.js';
import { completeCommand, commandView } from '../nodes/commands.js';
import { bearerOf, isLiveJoinToken, JOIN_TOKEN_PREFIX } from '../nodes/join-tokens.js';
import {
  COMMAND_MAX_RECEIVES,
  nodeQueue,
  recordHeartbeat,
  registerNode,
  heartbeatIntervalSeconds,
  rotateNodeToken,
  type RegistrationAccess,
} from '../nodes/nodes.js';
import { emitHeartbeatSignals, heartbeatSignals, type HeartbeatSignals } from './heartbeat-signals.js';
import { queueCredentialsRoute } from './queue-credentials.js';
import { stoppingRoute } from './stopping.js';
import {
  agentEventsRequest,
  heartbeatRequest,
  registerRequest,
  registerResponse,
  rotateTokenResponse,
} from '../../protocol/messages.js';
import { commandEnvelope, commandResult, type CommandResult } from '../../protocol/commands.js';
import { dlqName } from '../ports/queue.js';
import { advanceHistory } from '../nodes/metric-history.js';
import { ackRequest, heartbeatResponse, pollQuery, pollResponse } from '../../protocol/agent-api.js';
import { commandOut } from '../core/responses.js';

/** Largest event forwarded as is; bigger task files go to blob storage (SQS messages stop at 256 KiB). */
const MAX_INLINE_EVENT_BYTES = 200 * 1024;
/**
 * Largest command output carried on command.completed; bigger ones (log text, a host.exec's
 * stdout) stay in the command record only (GET /commands/{id}), so the event always fits SQS.
 */
const MAX_EVENT_OUTPUT_CHARS = 16 * 1024;

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'hook'> = {
  tags: ['Agent'],
  errorStyle: 'fastapi',
  scope: 'agent',
  // The node's credential before its body is parsed: a stranger learns nothing from validation.
  hook: async (req, ctx) => void (await authenticateAgent(ctx, req.headers)),
};

/**
 * The credential a registration comes with. The dispatcher has already refused anything that is
 * neither the API key nor one of these where API_AUTH is on; what remains is the API key (or no
 * auth at all), which may register any node.
 */
async function registrationAccess(
  ctx: AppContext,
  headers: Record<string, string>,
): Promise<RegistrationAccess> {
  const bearer = bearerOf(headers);
  if (!bearer) return { kind: 'admin' };
  if (bearer.startsWith(JOIN_TOKEN_PREFIX)) {
    return (await isLiveJoinToken(ctx, bearer)) ? { kind: 'join', token: bearer } : { kind: 'admin' };
  }
  const node = await nodeOfCredential(ctx, bearer);
  return node ? { kind: 'node', nodeId: node.nodeId, tokenHash: node.tokenHash } : { kind: 'admin' };
}

/** The node agent's side of the protocol (protocol/messages.ts). Every call but register carries the node's token. */
export function agentRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      // Enrolment: the API key, a join token (new nodes only) or the node's own credential (that node only).
      scope: 'user',
      role: 'admin',
      hook: undefined,
      altAuth: async (headers, ctx) => (await registrationAccess(ctx, headers)).kind !== 'admin',
      method: 'POST',
      path: '/agent/register',
      summary:
        'Register a node by name; returns its id, a fresh token and its command channel. A join token only creates nodes (an existing name is a 409); an existing node re-registers with its own credential or the API key',
      body: registerRequest,
      response: registerResponse,
      responses: {
        403: 'The node credential belongs to another node',
        409: 'Join token given for a name that is already registered',
      },
      handler: async (req, ctx) => {
        const r = await registerNode(ctx, req.body, await registrationAccess(ctx, req.headers));
        // An agent that starts again may have died running a command: its next poll looks at once.
        deadLetterChecks.delete(r.node.nodeId);
        // For the node's /ws/logs stream (no token in it: only the id and name).
        await emit(ctx, { type: 'node.registered', nodeId: r.node.nodeId, nodeName: r.node.nodeName });
        return {
          nodeId: r.node.nodeId,
          token: r.token,
          channel: r.channel,
          heartbeatIntervalSeconds: r.heartbeatIntervalSeconds,
        };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/agent/token/rotate',
      summary: "Replaces the node's credential with a fresh one; the one presented stops working at once",
      response: rotateTokenResponse,
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        const token = await rotateNodeToken(ctx, node);
        // A credential change is in the audit log, like the user calls.
        await recordAudit(ctx, {
          requestId: req.requestId,
          actor: { type: 'node', id: node.nodeId, name: node.nodeName },
          method: 'POST',
          route: '/agent/token/rotate',
          path: '/agent/token/rotate',
          targets: { node_id: node.nodeId },
          status: 200,
        });
        return reply(200, { nodeId: node.nodeId, token }, { 'cache-control': 'no-store' });
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/agent/heartbeat',
      summary: 'Metrics and container states; keeps the node online',
      body: heartbeatRequest,
      response: heartbeatResponse,
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        // Signals compare with the node as stored before this beat; one that fires stores the beat's sample.
        let signals: HeartbeatSignals | undefined;
        const {
          node: updated,
          before,
          cameOnline,
        } = await recordHeartbeat(
          ctx,
          node,
          req.body,
          (was) => (signals = heartbeatSignals(was, req.body)).hot.length > 0,
          (buffer) => advanceHistory(ctx, node, buffer, req.body.metrics),
        );
        const died = await applyContainerStates(ctx, updated, req.body.containers, cameOnline);
        await emitHeartbeatSignals(ctx, node.nodeId, signals ?? heartbeatSignals(before, req.body));
        // A node back (its orphans can go) or a copy dead (it needs a replacement).
        if (cameOnline || died) await emit(ctx, { type: 'reconcile' });
        return {
          ok: true as const,
          nodeId: node.nodeId,
          status: 'online' as const,
          heartbeatIntervalSeconds: heartbeatIntervalSeconds(ctx),
        };
      },
    }),
    queueCredentialsRoute(common),
    stoppingRoute(common),
    route({
      ...common,
      method: 'GET',
      path: '/agent/commands',
      summary: "Long-polls the node's command queue (the HTTP channel, when the control plane runs embedded)",
      query: pollQuery,
      response: pollResponse,
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        const queue = nodeQueue(node.nodeId);
        await failDeadLetters(ctx, node.nodeId);
        const signal = clientSignal();
        const messages = await ctx.queue.receive(queue, {
          waitSeconds: req.query.wait,
          maxMessages: req.query.max,
          ...(signal ? { signal } : {}),
        });
        // The agent went away while waiting (killed): what it can no longer read goes back at once,
        // rather than after the visibility timeout (120 s).
        if (signal?.aborted && messages.length) {
          await Promise.all(messages.map((m) => ctx.queue.changeVisibility(queue, m.receiptHandle, 0)));
          return { messages: [] };
        }
        return { messages: messages.map((m) => ({ receiptHandle: m.receiptHandle, body: m.body })) };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/agent/commands/ack',
      summary: 'Deletes delivered commands from the node queue',
      body: ackRequest,
      response: z.object({ ok: z.literal(true), acknowledged: z.number().int() }),
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        await ctx.queue.deleteBatch(nodeQueue(node.nodeId), req.body.receiptHandles);
        return { ok: true as const, acknowledged: req.body.receiptHandles.length };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/agent/commands/{commandId}/result',
      summary: "A command's outcome; a repeated report changes nothing",
      params: z.object({ commandId: z.string().min(1) }),
      body: commandResult,
      response: commandOut.extend({ duplicate: z.boolean() }),
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        const { command, first } = await takeResult(ctx, node.nodeId, req.params.commandId, req.body);
        return { ...commandView(command), duplicate: !first };
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/agent/events',
      summary: 'Asynchronous happenings (container exits, task progress), forwarded as `agent.<type>` events',
      body: agentEventsRequest,
      response: z.object({ ok: z.literal(true), accepted: z.number().int() }),
      handler: async (req, ctx) => {
        const node = await authenticateAgent(ctx, req.headers);
        const events = req.body.events;
        for (const [i, e] of events.entries()) {
          // A progress report a later one in the same request carries (same task, no lower) adds nothing.
          if (
            e.type === 'task.progress' &&
            events.some(
              (later, j) =>
                j > i &&
                later.type === 'task.progress' &&
                later.taskId === e.taskId &&
                later.progress >= e.progress,
            )
          )
            continue;
          // The orchestrator's own copies are marked dead at once; everything is also forwarded.
          if (e.type === 'container.exited') await containerExited(ctx, node.nodeId, e);
          // `type` last: spreading the agent's event after it would put back the bare type.
          let event: Record<string, unknown> = { nodeId: node.nodeId, ...e, type: `agent.${e.type}` };
          if (
            e.type === 'task.finished' &&
            e.files.length &&
            Buffer.byteLength(JSON.stringify(event)) > MAX_INLINE_EVENT_BYTES
          ) {
            // Only a task placed on this node gets its files stored; the key is built from checked
            // ids and the file's position, never from a name the node chose.
            const task = await getTask(ctx, e.taskId);
            const files = [];
            for (const [i, f] of (task?.nodeId === node.nodeId ? e.files : []).entries()) {
              const blobKey = agentEventBlobKey(node.nodeId, e.taskId, i);
              const body = Buffer.from(f.base64, 'base64');
              await ctx.blobs.put(blobKey, body, 'application/octet-stream');
              files.push({ name: f.name, contentType: f.contentType, blobKey, size: body.length });
            }
            event = { ...event, files };
          }
          // Checked by the agent.* schemas (functions/nodes/events.ts) before any handler sees it.
          await emit(ctx, event as AppEventInput<`agent.${typeof e.type}`>);
        }
        return { ok: true as const, accepted: req.body.events.length };
      },
    }),
  ];
}

/** Stores a command's result and applies it; the first report also emits `command.completed`. */
async function takeResult(ctx: AppContext, nodeId: string, commandId: string, result: CommandResult) {
  const { command, first } = await completeCommand(ctx, nodeId, commandId, result);
  // Every report re-applies (the transitions are conditional, so a repeat is a no-op): an
  // agent retrying after a failure half-way through still gets the instance updated.
  await applyResult(ctx, command);
  if (first && command.status !== 'pending') {
    const output = command.output ?? {};
    const small = JSON.stringify(output).length <= MAX_EVENT_OUTPUT_CHARS;
    await emit(ctx, {
      type: 'command.completed',
      commandId: command.commandId,
      nodeId: command.nodeId,
      commandType: command.type,
      status: command.status,
      ...(command.instanceId ? { instanceId: command.instanceId } : {}),
      output: small ? output : {},
      ...(small ? {} : { outputOmitted: true }),
      ...(command.error ? { error: command.error } : {}),
    });
  }
  return { command, first };
}

const DEAD_LETTER_CHECK_MS = 5 * 60_000;
const deadLetterChecks = new Map<string, number>();

/**
 * Commands the node's queue gave up on (received COMMAND_MAX_RECEIVES times, never acknowledged:
 * the agent died running each delivery) end `failed` with the reason, rather than pending forever.
 */
async function failDeadLetters(ctx: AppContext, nodeId: string): Promise<void> {
  // A look at most every few minutes per node and process: each look is a queue request, paid per node.
  const now = ctx.now();
  if ((deadLetterChecks.get(nodeId) ?? 0) > now) return;
  deadLetterChecks.set(nodeId, now + DEAD_LETTER_CHECK_MS);
  const dlq = dlqName(nodeQueue(nodeId));
  // No wait: a long poll here would hold the agent's own poll back.
  for (const m of await ctx.queue.receive(dlq, { maxMessages: 10, waitSeconds: 0 })) {
    let body: unknown;
    try {
      body = JSON.parse(m.body);
    } catch {
      body = undefined;
    }
    const envelope = commandEnvelope.safeParse(body);
    if (envelope.success && envelope.data.nodeId === nodeId) {
      await takeResult(ctx, nodeId, envelope.data.commandId, {
        status: 'failed',
        output: {},
        error: `not completed: delivered ${COMMAND_MAX_RECEIVES} times, and its node never reported a result (its agent stopped while running it each time)`,
      }).catch((error: unknown) => ctx.logger.warn('dead command not settled', { error: error as Error }));
    }
    await ctx.queue.delete(dlq, m.receiptHandle);
  }
}
