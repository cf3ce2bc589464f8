import type { AppContext } from '../../core/context.js';
import { ConflictError, NotFoundError, UpstreamError } from '../../core/errors.js';
import {
  getInstance,
  nodeInstances,
  slotsHolding,
  type InstanceItem,
  type SlotItem,
} from '../../orchestrator/model.js';
import { reconcile } from '../../orchestrator/reconciler.js';
import { settle } from '../../nodes/settle.js';
import { enginePruneOutput } from '../../../protocol/agent-api.js';
import { dispatchCommand, type CommandItem } from '../../nodes/commands.js';
import { EXITED, type FixType } from './problems.js';
import { isOnline, resolveNode, type NodeItem } from '../../nodes/nodes.js';

/** The automatic fixes, applied through the node's agent: a quick fix, or a maintenance run's. */

/** A fix's answer: what it did on the node, with fields of its own per fix type. */
export interface FixResult {
  node_id: string;
  fix_type: FixType;
  status: 'completed' | 'partial' | 'pending' | 'failed';
  [field: string]: unknown;
}

export interface StartedFix {
  commandIds: string[];
  /** The fix's answer once every command is done; throws the HTTP error a quick fix answers with. */
  finish(commands: CommandItem[]): Promise<FixResult>;
  /** What a 202 carries besides the pending command ids. */
  pendingExtras: Record<string, unknown>;
}

export function requireOnline(ctx: AppContext, node: NodeItem): void {
  if (!isOnline(node, ctx))
    throw new ConflictError(
      `Node ${node.nodeName} is offline (last heartbeat ${node.lastHeartbeat ?? 'never'}): its agent cannot act`,
      'NODE_OFFLINE',
    );
}

/** The agent's answer to a maintenance command, or the HTTP error that says why there is none. */
function agentOutput<T>(
  node: NodeItem,
  what: string,
  command: CommandItem | undefined,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
): T {
  if (!command || command.status === 'failed')
    throw new UpstreamError(`${what} failed on ${node.nodeName}: ${command?.error ?? 'no result'}`);
  const out = schema.safeParse(command.output ?? {});
  if (!out.success) throw new UpstreamError(`${what} on ${node.nodeName}: the agent's result is unreadable`);
  return out.data;
}

async function startCleanup(ctx: AppContext, node: NodeItem): Promise<StartedFix> {
  const head = { node_id: node.nodeId, fix_type: 'docker_cleanup' as const };
  const commandId = await dispatchCommand(ctx, node.nodeId, { type: 'engine.prune' });
  return {
    commandIds: [commandId],
    pendingExtras: head,
    finish: async ([command]) => {
      const out = agentOutput(node, 'docker_cleanup', command, enginePruneOutput);
      return {
        ...head,
        status: 'completed' as const,
        containers_removed: out.containersRemoved.map((c) => ({
          container_id: c.containerId,
          name: c.name,
          instance_id: c.instanceId || null,
          kind: c.kind,
        })),
        containers_skipped: out.containersSkipped.map((c) => ({
          container_id: c.containerId,
          name: c.name,
          reason: c.reason,
        })),
        images_removed: out.imagesDeleted,
        space_reclaimed_bytes: out.spaceReclaimedBytes,
      };
    },
  };
}

interface ExitedCopy {
  inst: InstanceItem;
  outcome: 'replaced' | 'unplaced' | 'released';
  replacement?: InstanceItem;
  reason?: string;
}

/**
 * The orchestrator's copies that exited (or failed) on the node get replaced now: a reconcile of
 * their images, as the sweep would do within the minute. A replacement may land on another node.
 * Whoever placed it (this reconcile or a concurrent one), the copy's slot says who replaced it.
 */
async function startRestartExited(ctx: AppContext, node: NodeItem): Promise<StartedFix> {
  const head = { node_id: node.nodeId, fix_type: 'restart_exited' as const };
  const exited = (await nodeInstances(ctx, node.nodeId)).filter((i) => EXITED.has(i.status));
  const images = [...new Set(exited.map((i) => i.imageId))];
  const copies: ExitedCopy[] = [];
  for (const imageId of images) {
    const mine = exited.filter((i) => i.imageId === imageId);
    // By the slot's key: a global service's slots are one a node, not by ordinal (never all of them read).
    const heldBy = new Map(
      await Promise.all(mine.map(async (i) => [i.instanceId, (await slotsHolding(ctx, i))[0]] as const)),
    );
    const { unplaced } = await reconcile(ctx, { imageId, retryNow: true });
    for (const inst of mine) {
      const held = heldBy.get(inst.instanceId);
      const ordinal = held?.ordinal;
      const slot = held === undefined ? undefined : await ctx.store.get<SlotItem>(held.pk, held.sk);
      if (!slot) {
        copies.push({ inst, outcome: 'released' });
      } else if (slot.instanceId === inst.instanceId) {
        const why = unplaced.find((u) => u.imageId === imageId && u.ordinal === ordinal)?.reason;
        copies.push({ inst, outcome: 'unplaced', reason: why ?? 'not placed yet' });
      } else {
        copies.push({ inst, outcome: 'replaced', replacement: await getInstance(ctx, slot.instanceId) });
      }
    }
  }
  const commandIds = copies.flatMap((c) =>
    c.replacement?.startCommandId ? [c.replacement.startCommandId] : [],
  );
  return {
    commandIds,
    pendingExtras: {
      ...head,
      replacements: copies.flatMap((c) => (c.replacement ? [c.replacement.instanceId] : [])),
    },
    finish: async (commands) => {
      const byId = new Map(commands.map((c) => [c.commandId, c]));
      const replaced = copies.map((c) => {
        const base = { container_id: c.inst.instanceId, name: c.inst.name, image: c.inst.imageId };
        if (c.outcome === 'released') return { ...base, status: 'released' as const };
        if (c.outcome === 'unplaced') return { ...base, status: 'unplaced' as const, error: c.reason! };
        const start = c.replacement?.startCommandId ? byId.get(c.replacement.startCommandId) : undefined;
        return {
          ...base,
          status: start?.status === 'failed' ? ('failed' as const) : ('started' as const),
          replacement_id: c.replacement?.instanceId ?? null,
          replacement_node_id: c.replacement?.nodeId ?? null,
          ...(start?.status === 'failed' ? { error: start.error ?? 'start failed' } : {}),
        };
      });
      const ok = replaced.filter((r) => r.status === 'started' || r.status === 'released').length;
      if (replaced.length && !ok) {
        const first = replaced[0]!;
        const detail = `Cannot replace the exited containers of ${node.nodeName}: ${'error' in first ? first.error : 'unknown'}`;
        if (replaced.every((r) => r.status === 'unplaced')) throw new ConflictError(detail, 'NO_CAPACITY');
        throw new UpstreamError(detail);
      }
      return {
        ...head,
        status: ok === replaced.length ? ('completed' as const) : ('partial' as const),
        replaced,
      };
    },
  };
}

export async function startFix(ctx: AppContext, node: NodeItem, fix: FixType): Promise<StartedFix> {
  requireOnline(ctx, node);
  return fix === 'docker_cleanup' ? startCleanup(ctx, node) : startRestartExited(ctx, node);
}

/** POST /api/maintenance/quick-fix: one fix on one node, answered like the orchestrator's calls (202 past COMMAND_WAIT_MS). */
export async function quickFix(ctx: AppContext, nodeRef: string, fix: FixType) {
  const node = await resolveNode(ctx, nodeRef);
  if (!node) throw new NotFoundError(`Node ${nodeRef} not found`);
  const started = await startFix(ctx, node, fix);
  return settle(ctx, started.commandIds, (commands) => started.finish(commands), started.pendingExtras);
}
