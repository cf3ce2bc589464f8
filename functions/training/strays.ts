import type { AppContext } from '../core/context.js';
import type { NodeItem } from '../nodes/nodes.js';
import { launcherFor } from './launcher.js';
import { getRun, parseInstanceId, type RunItem } from './model.js';

/**
 * Run containers still on a node after their run ended. A run closed without an exit (its node
 * went offline) has its container removal queued once; that command can be lost (taken by the
 * dead agent's last long poll, dropped to the DLQ), and the container then keeps training next to
 * the retry, on the same checkpoint folder. The node's heartbeats list its containers, so the
 * removal is queued again: when the node comes back online, and every fifth minute for the
 * online nodes the node sweep saw listing run containers (`training.strays`).
 */

/** How long after its run ended a container may still be there (its removal had its chance). */
export const STRAY_GRACE_MS = 60_000;

/**
 * Whether a container the node reports for this run should go: the run is over (or gone with its
 * deleted job) since at least `graceMs`, so the removal endAttempt queued had its chance.
 */
export function isStrayRun(run: RunItem | undefined, now: number, graceMs: number): boolean {
  if (!run) return true;
  if (run.status === 'running' || run.status === 'pending') return false;
  const ended = run.endedAt ? Date.parse(run.endedAt) : Number.NaN;
  return !(now - ended < graceMs);
}

/** Queues the removal of every stray run container the node's last heartbeat listed; returns their instance ids. */
export async function removeStrayRunContainers(
  ctx: AppContext,
  node: Pick<NodeItem, 'nodeId' | 'containerStats'>,
  graceMs: number,
): Promise<string[]> {
  const removed: string[] = [];
  for (const [instanceId, sample] of Object.entries(node.containerStats ?? {})) {
    if (sample.kind !== 'run') continue;
    const ref = parseInstanceId(instanceId);
    if (!ref) continue;
    const run = await getRun(ctx, ref.jobId, ref.slot, ref.attempt);
    if (!isStrayRun(run, ctx.now(), graceMs)) continue;
    await launcherFor(ctx).remove(node.nodeId, instanceId);
    removed.push(instanceId);
  }
  if (removed.length)
    ctx.logger.info('removing run containers whose runs are over', { nodeId: node.nodeId, removed });
  return removed;
}
