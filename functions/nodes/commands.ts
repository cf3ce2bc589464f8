import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { fleetKeys, keys } from '../core/keys.js';
import { ConditionFailedError, UnstorableError, queryAll, type StoreItem } from '../ports/store.js';
import { nodeQueue } from './nodes.js';
import { countCommandResult } from '../observability/counters.js';
import { annotateTrace } from '../core/tracing.js';
import type * as z from 'zod';
import type {
  COMMANDS,
  Command,
  CommandEnvelope,
  CommandResult,
  CommandType,
} from '../../protocol/commands.js';

export type CommandStatus = 'pending' | 'succeeded' | 'failed';

export interface CommandItem extends StoreItem {
  commandId: string;
  nodeId: string;
  type: CommandType;
  status: CommandStatus;
  issuedAt: string;
  completedAt?: string;
  /** When a command left pending long after it was issued was last sent again (resume.ts). */
  resentAt?: string;
  output?: Record<string, unknown>;
  error?: string;
  /** The container the command acts on, when it acts on one. */
  instanceId?: string;
  command: Command;
}

/** A command's record as completed, with a succeeded output parsed by its declared schema. */
export type CompletedCommand<T extends CommandType> = CommandItem & {
  type: T;
  /** Undefined when the command failed, or its output does not match its declaration. */
  parsed?: z.output<(typeof COMMANDS)[T]['output']>;
};

/** Command records are kept a week for GET /commands/{id}, then TTL removes them. */
const COMMAND_TTL_SECONDS = 7 * 24 * 3600;

export interface DispatchOptions {
  /** Chosen by the caller when it must be stored elsewhere (on the instance) before dispatch. */
  commandId?: string;
  instanceId?: string;
}

/** Records the command as pending, then puts its envelope on the node's queue. */
export async function dispatchCommand(
  ctx: AppContext,
  nodeId: string,
  command: Command,
  options: DispatchOptions = {},
): Promise<string> {
  const commandId = options.commandId ?? randomUUID();
  const now = ctx.now();
  const issuedAt = new Date(now).toISOString();
  const item: CommandItem = {
    ...keys.command(commandId),
    ...keys.nodeCommandsIndex(nodeId, issuedAt, commandId),
    commandId,
    nodeId,
    type: command.type,
    status: 'pending',
    issuedAt,
    ...(options.instanceId ? { instanceId: options.instanceId } : {}),
    command,
    expiresAt: Math.floor(now / 1000) + COMMAND_TTL_SECONDS,
  };
  // Record first: a result can only be accepted for a command the table knows.
  await ctx.store.put(item, { notExists: true });
  const envelope: CommandEnvelope = { commandId, nodeId, issuedAt, command };
  await ctx.queue.send(nodeQueue(nodeId), JSON.stringify(envelope));
  // The API call (or event) that issued it is found by the command id in X-Ray and the logs.
  annotateTrace({ commandId });
  ctx.logger.info('command dispatched', { commandId, nodeId, type: command.type });
  return commandId;
}

export async function getCommand(ctx: AppContext, commandId: string): Promise<CommandItem | undefined> {
  const k = keys.command(commandId);
  return ctx.store.get<CommandItem>(k.pk, k.sk);
}

export interface WaitOutcome {
  done: CommandItem[];
  /** Ids still pending when the bound ran out. */
  pending: string[];
}

/**
 * Polls command records until every one is done or the bound passes (COMMAND_WAIT_MS, kept under
 * API Gateway's 29 s). The bound is wall-clock time, so it uses the real clock, not ctx.now.
 */
export async function waitForCommands(
  ctx: AppContext,
  ids: string[],
  timeoutMs = ctx.config.COMMAND_WAIT_MS,
): Promise<WaitOutcome> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, CommandItem>();
  let delay = 100;
  for (;;) {
    for (const id of ids) {
      if (done.has(id)) continue;
      const item = await getCommand(ctx, id);
      if (item && item.status !== 'pending') done.set(id, item);
    }
    const pending = ids.filter((id) => !done.has(id));
    const left = deadline - Date.now();
    if (!pending.length || left <= 0) return { done: ids.flatMap((id) => done.get(id) ?? []), pending };
    await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    delay = Math.min(delay * 1.5, 1000);
  }
}

/** Listing of a node's commands, newest first, for diagnostics. */
export async function nodeCommands(ctx: AppContext, nodeId: string, limit = 50): Promise<CommandItem[]> {
  const page = await ctx.store.query<CommandItem>(fleetKeys.nodeCommandsPk(nodeId), {
    index: 'gsi1',
    ascending: false,
    limit,
  });
  return page.items;
}

/**
 * Puts every pending command's envelope on its node's queue again; how many. Run when the local
 * runtime starts: the embedded queue kept nothing across the restart, and on any queue a process
 * killed between recording a command and sending it left one that no agent will ever see. Either
 * would stay pending forever. The agent's journal makes a second delivery of one it did run harmless.
 */
export async function redeliverPendingCommands(ctx: AppContext): Promise<number> {
  const nodeIds = (
    await queryAll<StoreItem & { nodeId: string }>(ctx.store, fleetKeys.nodesPk, { index: 'gsi1' })
  ).map((n) => n.nodeId);
  let sent = 0;
  for (const nodeId of nodeIds) {
    const all = await queryAll<CommandItem>(ctx.store, fleetKeys.nodeCommandsPk(nodeId), { index: 'gsi1' });
    for (const c of all.filter((c) => c.status === 'pending')) if (await resendCommand(ctx, c)) sent++;
  }
  if (sent) ctx.logger.info('pending commands redelivered', { commands: sent });
  return sent;
}

/** Sends a recorded command to its node's queue again (agents run an id once). False when the queue is gone. */
export async function resendCommand(ctx: AppContext, c: CommandItem): Promise<boolean> {
  const envelope: CommandEnvelope = {
    commandId: c.commandId,
    nodeId: c.nodeId,
    issuedAt: c.issuedAt,
    command: c.command,
  };
  try {
    await ctx.queue.send(nodeQueue(c.nodeId), JSON.stringify(envelope));
    return true;
  } catch (error) {
    // A node whose queue is gone (deregistered): its commands cannot go anywhere.
    ctx.logger.warn('pending command not redelivered', {
      commandId: c.commandId,
      nodeId: c.nodeId,
      error: error as Error,
    });
    return false;
  }
}

/**
 * Stores an agent's result. Only the first report changes anything: later ones (a retried POST,
 * a redelivered command run twice) get the stored record back with `first: false`.
 */
export async function completeCommand(
  ctx: AppContext,
  nodeId: string,
  commandId: string,
  result: CommandResult,
): Promise<{ command: CommandItem; first: boolean }> {
  const k = keys.command(commandId);
  // No read first: the write's condition checks the node and that it is pending, and a lost
  // condition carries the stored record (none: no such command).
  try {
    const command = await ctx.store.update<CommandItem>(
      k.pk,
      k.sk,
      {
        set: {
          status: result.status,
          completedAt: new Date(ctx.now()).toISOString(),
          output: result.output,
          ...(result.error !== undefined ? { error: result.error } : {}),
        },
      },
      { equals: { status: 'pending', nodeId } },
    );
    await countCommandResult(
      ctx,
      command.type,
      command.status,
      Math.max(0, (ctx.now() - Date.parse(command.issuedAt)) / 1000),
    ).catch((error: unknown) =>
      ctx.logger.warn('command count failed', { commandId, error: error as Error }),
    );
    return { command, first: true };
  } catch (error) {
    // An id too long to be a key names no command.
    if (error instanceof UnstorableError && error.reason === 'key_too_long')
      throw new NotFoundError(`Command ${commandId} not found`);
    if (!(error instanceof ConditionFailedError)) throw error;
    const current = error.current as CommandItem | undefined;
    if (!current || current.nodeId !== nodeId) throw new NotFoundError(`Command ${commandId} not found`);
    return { command: current, first: false };
  }
}

/** GET /commands/{command_id} body. */
export function commandView(c: CommandItem) {
  return {
    command_id: c.commandId,
    node_id: c.nodeId,
    type: c.type,
    status: c.status,
    instance_id: c.instanceId ?? null,
    issued_at: c.issuedAt,
    completed_at: c.completedAt ?? null,
    output: c.output ?? null,
    error: c.error ?? null,
  };
}
