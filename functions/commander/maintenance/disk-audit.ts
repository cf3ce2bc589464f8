import type { AppContext } from '../../core/context.js';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { reply } from '../../core/http.js';
import { diskAuditOutput, type DiskAuditOutput } from '../../../protocol/agent-api.js';
import { dispatchCommand, waitForCommands, type CommandItem } from '../../nodes/commands.js';
import { requireOnline } from './fixes.js';
import { NODE_PAGE_MAX, isOnline, nodePage, resolveNode, type NodeItem } from '../../nodes/nodes.js';

/** The disk audit: what fills each node's disks (filesystems, the engine's own accounting), asked of its agent. */

function fsView(f: DiskAuditOutput['filesystems'][number]) {
  return {
    role: f.role,
    path: f.path,
    total_bytes: f.totalBytes ?? null,
    used_bytes: f.usedBytes ?? null,
    free_bytes: f.freeBytes ?? null,
    used_percent: f.usedPercent ?? null,
    ...(f.error ? { error: f.error } : {}),
  };
}

function auditView(node: NodeItem, commandId: string, command: CommandItem | undefined) {
  const head = { node_id: node.nodeId, name: node.nodeName, command_id: commandId };
  if (!command) return { ...head, status: 'pending' as const };
  if (command.status === 'failed')
    return { ...head, status: 'failed' as const, error: command.error ?? 'failed' };
  const out = diskAuditOutput.safeParse(command.output ?? {});
  if (!out.success) return { ...head, status: 'failed' as const, error: "the agent's result is unreadable" };
  const e = out.data.engine;
  return {
    ...head,
    status: 'completed' as const,
    filesystems: out.data.filesystems.map(fsView),
    engine: e && {
      name: e.name,
      root_dir: e.rootDir,
      layers_size_bytes: e.layersSizeBytes,
      images: {
        count: e.images.count,
        size_bytes: e.images.sizeBytes,
        reclaimable_bytes: e.images.reclaimableBytes,
      },
      containers: {
        count: e.containers.count,
        size_bytes: e.containers.sizeBytes,
        reclaimable_bytes: e.containers.reclaimableBytes,
      },
      volumes: { count: e.volumes.count, size_bytes: e.volumes.sizeBytes },
      build_cache_bytes: e.buildCacheBytes,
    },
    ...(out.data.engineError ? { engine_error: out.data.engineError } : {}),
  };
}

/** Which nodes an audit asks: one by id or name, else a page of the fleet by name (its online nodes). */
export interface AuditTarget {
  node_id?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** The online nodes of one page of the node index (a request reads its page, not the fleet). */
async function onlinePage(ctx: AppContext, target: AuditTarget) {
  let page;
  try {
    page = await nodePage(ctx, { limit: target.limit ?? NODE_PAGE_MAX, cursor: target.cursor });
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError(
      [{ loc: ['body', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' }],
      400,
    );
  }
  const now = ctx.now();
  return { nodes: page.nodes.filter((n) => isOnline(n, ctx, now)), next: page.cursor ?? null };
}

/**
 * POST /api/maintenance/disk/audit: one node, or the online nodes of a page of the fleet by name
 * (`limit`, default 1,000: a small fleet in one page; `next_cursor` for the next); 202 with what
 * is done when some have not answered.
 */
export async function diskAudit(ctx: AppContext, target: AuditTarget = {}) {
  let targets: NodeItem[];
  /** Only a page's answer has it. */
  let next: string | null | undefined;
  if (target.node_id !== undefined) {
    const node = await resolveNode(ctx, target.node_id);
    if (!node) throw new NotFoundError(`Node ${target.node_id} not found`);
    requireOnline(ctx, node);
    targets = [node];
  } else ({ nodes: targets, next } = await onlinePage(ctx, target));
  const sent = await Promise.all(
    targets.map(async (node) => ({
      node,
      commandId: await dispatchCommand(ctx, node.nodeId, { type: 'disk.audit' }),
    })),
  );
  const waited = await waitForCommands(
    ctx,
    sent.map((s) => s.commandId),
  );
  const done = new Map(waited.done.map((c) => [c.commandId, c]));
  const nodes = sent.map((s) => auditView(s.node, s.commandId, done.get(s.commandId)));
  const page = next === undefined ? {} : { next_cursor: next };
  if (waited.pending.length)
    return reply(202, { status: 'pending', pending_commands: waited.pending, nodes, ...page });
  return { nodes, ...page };
}
