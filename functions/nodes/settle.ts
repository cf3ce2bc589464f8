import type { AppContext } from '../core/context.js';
import { reply, type Reply } from '../core/http.js';
import { waitForCommands, type CommandItem } from './commands.js';

/** Waiting on dispatched commands within a request: the answer once they are done, 202 past the wait. */

/** 200 with the body once every command is done; past COMMAND_WAIT_MS, 202 with what is still pending. */
export async function settle<T>(
  ctx: AppContext,
  commandIds: string[],
  done: (commands: CommandItem[]) => Promise<T>,
  pendingExtras: Record<string, unknown> = {},
): Promise<T | Reply> {
  const outcome = await waitForCommands(ctx, commandIds);
  if (outcome.pending.length)
    return reply(202, { status: 'pending', pending_commands: outcome.pending, ...pendingExtras });
  return done(outcome.done);
}

export function failures(commands: CommandItem[]) {
  return commands
    .filter((c) => c.status === 'failed')
    .map((c) => ({ id: c.instanceId ?? c.commandId, error: c.error ?? 'failed' }));
}
