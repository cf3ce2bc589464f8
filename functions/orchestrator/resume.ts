import type { AppContext } from '../core/context.js';
import { dispatchCommand, getCommand } from '../nodes/commands.js';
import { ConditionFailedError } from '../ports/store.js';
import { allInstances, listServices, transitionInstance } from './model.js';
import { startSpec } from './reconciler.js';

/**
 * Copies a killed control plane placed without their start command: a placement writes the copy
 * (`pending`, with its start command's id) and then the command, so a process that died between
 * the two left a copy that holds its slot and waits for a result that can never come. Run when
 * the control plane starts, before anything else writes: each such copy gets its start command
 * now, under the id it already names (a writer that got there first wins; the agent runs an id
 * once). Returns the copies resumed.
 */
export async function resumeUndispatchedStarts(ctx: AppContext): Promise<number> {
  const services = await listServices(ctx);
  const byImage = new Map(services.map((s) => [s.imageId, s]));
  let resumed = 0;
  for (const inst of await allInstances(ctx, services)) {
    if (inst.status !== 'pending' || !inst.startCommandId) continue;
    if (await getCommand(ctx, inst.startCommandId)) continue;
    const service = byImage.get(inst.imageId)!;
    try {
      await dispatchCommand(
        ctx,
        inst.nodeId,
        { type: 'container.start', spec: startSpec(service, inst.instanceId) },
        { commandId: inst.startCommandId, instanceId: inst.instanceId },
      );
      resumed++;
    } catch (error) {
      if (error instanceof ConditionFailedError) continue;
      // Not deliverable now: failed, so the reconciler replaces it rather than waiting on it.
      await transitionInstance(ctx, inst.instanceId, ['pending'], 'failed', {
        lastError: `start not dispatched: ${(error as Error).message}`,
      });
    }
  }
  if (resumed) ctx.logger.info('copies placed without their start command resumed', { copies: resumed });
  return resumed;
}
