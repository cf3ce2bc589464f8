import * as z from 'zod';
import type { DocumentedResponse } from './route.js';

/** What a call that waits for agents answers past COMMAND_WAIT_MS; routes may add fields (command_id, image). */
export const pendingCommandsBody = z.looseObject({
  status: z.literal('pending'),
  pending_commands: z.array(z.string()).describe('Command ids to follow with GET /commands/{command_id}'),
});

/** A documented 202 whose body is the pending command ids. */
export function pending202(description: string, schema: z.ZodType = pendingCommandsBody): DocumentedResponse {
  return { description, schema };
}

/** A command sent to a node's agent, as GET /commands/{command_id} shows it (functions/nodes/commands.ts commandView). */
export const commandOut = z.object({
  command_id: z.string(),
  node_id: z.string(),
  type: z.string(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  instance_id: z.string().nullable(),
  issued_at: z.string(),
  completed_at: z.string().nullable(),
  output: z.unknown().describe('What the agent reported; its shape depends on the command type'),
  error: z.string().nullable(),
});
