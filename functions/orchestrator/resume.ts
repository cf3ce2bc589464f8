import type { AppContext } from '../core/context.js';
import { fleetKeys, keys } from '../core/keys.js';
import { dispatchCommand, getCommand, resendCommand, type CommandItem } from '../nodes/commands.js';
import type { Command } from '../../protocol/commands.js';
import { ConditionFailedError, queryAll, updateIf, type StoreItem } from '../ports/store.js';
import {
  getService,
  nodeInstances,
  transitionInstance,
  type InstanceItem,
  type ServiceItem,
} from './model.js';
import { applyCommandResult } from './observation.js';
import { startSpec } from './plan-input.js';

/** The command a copy in this state waits on. */
const AWAITS = {
  pending: 'container.start',
  stopping: 'container.stop',
  removing: 'container.remove',
} as const;

/**
 * Copies a killed control plane left waiting on a command it never recorded, or on a result it
 * stored but never applied. A change of a copy writes the copy first (`pending` with its start
 * command's id, or `stopping` / `removing`) and then its command, and a result is stored before it
 * is applied: a process that died in between left a copy that would wait forever. Run when the
 * control plane starts, before anything else writes: a start is sent under the id the copy
 * already names, a stop or remove is sent again unless one was recorded for the copy since it
 * changed (the agent runs an id once; a second stop or remove finds nothing left to do), and a
 * stored result is applied. Returns the copies resumed.
 */
export async function resumeInterruptedCopies(ctx: AppContext): Promise<number> {
  let resumed = 0;
  let cursor: string | undefined;
  // Node by node from the node index: one node's copies in memory at a time, never the fleet's.
  do {
    const page = await ctx.store.query<StoreItem & { nodeId: string }>(fleetKeys.nodesPk, {
      index: 'gsi1',
      limit: NODES_A_READ,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    for (const node of page.items) resumed += await resumeNodeCopies(ctx, node.nodeId);
    cursor = page.cursor;
  } while (cursor !== undefined);
  if (resumed)
    ctx.logger.info('copies left mid-change by a stopped control plane resumed', { copies: resumed });
  return resumed;
}

/** Nodes one read of the node index takes while resuming. */
const NODES_A_READ = 100;

/** One node's copies left mid-change (resumeInterruptedCopies): reads that node's copies, and their services. */
export async function resumeNodeCopies(ctx: AppContext, nodeId: string): Promise<number> {
  const waiting = (await nodeInstances(ctx, nodeId)).filter((i) => i.status in AWAITS);
  if (!waiting.length) return 0;
  const services = new Map<string, Promise<ServiceItem | undefined>>();
  const serviceOf = (imageId: string) => {
    let got = services.get(imageId);
    if (!got) services.set(imageId, (got = getService(ctx, imageId)));
    return got;
  };
  const commandsOf = nodeCommandsReader(ctx);
  let resumed = 0;
  for (const inst of waiting)
    if (await resumeCopy(ctx, inst, await serviceOf(inst.imageId), commandsOf)) resumed++;
  return resumed;
}

/**
 * How long a copy may wait on its change before the minute's reconcile takes it for one a dead
 * invocation left half done. Lambda has no start-up step: an invocation cut off (timeout, crash)
 * between a copy's write and its command's is found here instead. Far above any invocation's
 * timeout, so no live writer is raced.
 */
export const RESUME_AFTER_MS = 5 * 60_000;

/** The minute's reconcile of one image: resumes its copies waiting on a change longer than RESUME_AFTER_MS. */
export async function resumeStaleCopies(
  ctx: AppContext,
  instances: InstanceItem[],
  service: Parameters<typeof startSpec>[0],
): Promise<number> {
  const before = ctx.now() - RESUME_AFTER_MS;
  const stale = instances.filter((i) => i.status in AWAITS && Date.parse(i.updatedAt) < before);
  if (!stale.length) return 0;
  const commandsOf = nodeCommandsReader(ctx);
  let resumed = 0;
  for (const inst of stale) if (await resumeCopy(ctx, inst, service, commandsOf, before)) resumed++;
  if (resumed)
    ctx.logger.warn('copies left mid-change resumed', { imageId: service.imageId, copies: resumed });
  return resumed;
}

function nodeCommandsReader(ctx: AppContext): (nodeId: string) => Promise<CommandItem[]> {
  const nodeCommands = new Map<string, Promise<CommandItem[]>>();
  return (nodeId) => {
    let got = nodeCommands.get(nodeId);
    if (!got) {
      got = queryAll<CommandItem>(ctx.store, fleetKeys.nodeCommandsPk(nodeId), { index: 'gsi1' });
      nodeCommands.set(nodeId, got);
    }
    return got;
  };
}

/** One copy: its missing command sent, or its stored result applied. False when it waits on nothing lost. */
async function resumeCopy(
  ctx: AppContext,
  inst: InstanceItem,
  service: Parameters<typeof startSpec>[0] | undefined,
  commandsOf: (nodeId: string) => Promise<CommandItem[]>,
  /** Set by the minute's reconcile: a command still pending that was sent before this is sent again. */
  resendBefore?: number,
): Promise<boolean> {
  if (!(inst.status in AWAITS)) return false;
  const type = AWAITS[inst.status as keyof typeof AWAITS];
  const named = inst.status === 'pending' ? inst.startCommandId : inst.lastCommandId;
  let command = named ? await getCommand(ctx, named) : undefined;
  if (command?.type !== type && inst.status !== 'pending')
    // Recorded, but the copy was not told its id before the process died.
    command = (await commandsOf(inst.nodeId)).find(
      (c) => c.instanceId === inst.instanceId && c.type === type && c.issuedAt >= inst.updatedAt,
    );
  if (command?.type === type) {
    if (command.status === 'pending') {
      // Sent with every pending command at a local start; on Lambda, one recorded by an
      // invocation that died before sending it is sent again here, once per RESUME_AFTER_MS.
      if (resendBefore === undefined) return false;
      if (Date.parse(command.resentAt ?? command.issuedAt) >= resendBefore) return false;
      const marked = await updateIf<CommandItem>(
        ctx.store,
        keys.command(command.commandId).pk,
        keys.command(command.commandId).sk,
        { set: { resentAt: new Date(ctx.now()).toISOString() } },
        command.resentAt
          ? { equals: { status: 'pending', resentAt: command.resentAt } }
          : { equals: { status: 'pending' }, absent: ['resentAt'] },
      );
      return marked !== undefined && (await resendCommand(ctx, marked));
    }
    await applyCommandResult(ctx, command);
    return true;
  }
  return sendAgain(ctx, inst, type, service);
}

async function sendAgain(
  ctx: AppContext,
  inst: InstanceItem,
  type: (typeof AWAITS)[keyof typeof AWAITS],
  service: Parameters<typeof startSpec>[0] | undefined,
): Promise<boolean> {
  const command: Command =
    type === 'container.start'
      ? { type, spec: startSpec(service!, inst.instanceId) }
      : type === 'container.stop'
        ? { type, instanceId: inst.instanceId, timeoutSeconds: 10 }
        : { type, instanceId: inst.instanceId, force: true };
  try {
    const commandId = await dispatchCommand(ctx, inst.nodeId, command, {
      ...(type === 'container.start' ? { commandId: inst.startCommandId } : {}),
      instanceId: inst.instanceId,
    });
    if (type !== 'container.start')
      await transitionInstance(ctx, inst.instanceId, [inst.status], inst.status, {
        lastCommandId: commandId,
      });
    return true;
  } catch (error) {
    if (error instanceof ConditionFailedError) return false;
    if (type !== 'container.start') throw error;
    // Not deliverable now: failed, so the reconciler replaces it rather than waiting on it.
    await transitionInstance(ctx, inst.instanceId, ['pending'], 'failed', {
      lastError: `start not dispatched: ${(error as Error).message}`,
    });
    return false;
  }
}
