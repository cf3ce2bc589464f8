import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import {
  ConflictError,
  NotFoundError,
  ForbiddenError,
  TimedOutError,
  UpstreamError,
} from '../core/errors.js';
import { route, type AnyRoute } from '../core/route.js';
import { settle } from '../nodes/settle.js';
import { dispatchCommand } from '../nodes/commands.js';
import { isOnline, resolveNode } from '../nodes/nodes.js';
import { HOST_EXEC } from '../../protocol/commands.js';
import { EXEC_DISABLED, hostExecOutput } from '../../protocol/agent-api.js';
import { pending202 } from '../core/responses.js';

/**
 * Fleet Commander's SSH API without SSH: the node's agent runs the command (host.exec), so no
 * credentials leave the vault and no port is opened. The agent refuses unless it was started
 * with --allow-exec. Nothing here logs the command or its output.
 */

export const execBody = z.object({
  node_id: z.string().min(1),
  command: z.string().max(HOST_EXEC.maxCommandChars).regex(/\S/, 'command is empty'),
  /** Seconds before the agent kills the command (and everything it started). */
  timeout: z.number().int().min(1).max(HOST_EXEC.maxTimeoutSeconds).default(HOST_EXEC.defaultTimeoutSeconds),
});

const execDisabled = (nodeName: string) =>
  new ForbiddenError(
    `Remote execution is disabled on node ${nodeName}: restart its agent with --allow-exec (or FLEET_ALLOW_EXEC=true) to allow it`,
  );

export async function execOnNode(ctx: AppContext, body: z.output<typeof execBody>) {
  const node = await resolveNode(ctx, body.node_id);
  if (!node) throw new NotFoundError(`Node ${body.node_id} not found`);
  if (!isOnline(node, ctx))
    throw new ConflictError(
      `Node ${node.nodeName} is offline (last heartbeat ${node.lastHeartbeat ?? 'never'}): its agent cannot run the command`,
      'NODE_OFFLINE',
    );
  // Refused up front when the node said so at registration: nothing is queued in vain.
  if (node.policy?.allowExec === false) throw execDisabled(node.nodeName);
  const host = node.addresses[0] ?? node.hostname;
  const commandId = await dispatchCommand(ctx, node.nodeId, {
    type: 'host.exec',
    command: body.command,
    timeoutSeconds: body.timeout,
  });
  return settle(
    ctx,
    [commandId],
    async ([c]) => {
      if (!c || c.status === 'failed') {
        if (c?.output?.['errorType'] === EXEC_DISABLED) throw execDisabled(node.nodeName);
        throw new UpstreamError(`The command could not run on ${node.nodeName}: ${c?.error ?? 'no result'}`);
      }
      const out = hostExecOutput.safeParse(c.output ?? {});
      if (!out.success)
        throw new UpstreamError(`The agent of ${node.nodeName} answered an unreadable result`);
      if (out.data.timedOut)
        throw new TimedOutError(
          `The command timed out after ${body.timeout} s on ${node.nodeName} and was killed; its output so far: GET /commands/${commandId}`,
        );
      return {
        node_id: node.nodeId,
        host,
        stdout: out.data.stdout,
        stderr: out.data.stderr,
        exit_status: out.data.exitStatus,
      };
    },
    { node_id: node.nodeId, host },
  );
}

export function sshRoutes(): AnyRoute[] {
  return [
    route({
      tags: ['SSH'],
      errorStyle: 'fastapi',
      scope: 'user',
      method: 'POST',
      path: '/api/ssh/exec-node',
      role: 'admin',
      summary:
        'Run a shell command on a node through its agent (/bin/sh -c, timeout 30 s by default, at most 120; 64 KiB of each output, the end kept)',
      body: execBody,
      response: z.object({
        node_id: z.string(),
        host: z.string(),
        stdout: z.string(),
        stderr: z.string(),
        exit_status: z.number().int().nullable(),
      }),
      responses: {
        202: pending202(
          'The agent has not answered within COMMAND_WAIT_MS: the pending command id (GET /commands/{command_id})',
        ),
        403: 'The node’s agent was not started with --allow-exec',
        404: 'Unknown node',
        409: 'Node offline',
        502: 'The node could not run the command (the detail has its error)',
        504: 'The command ran past its timeout and was killed',
      },
      handler: async (req, ctx) => execOnNode(ctx, req.body),
    }),
  ];
}
