import type { SlotItem } from '../../functions/cluster/slots.js';
import type { AppContext } from '../../functions/core/context.js';
import { taskQueueKeys } from '../../functions/core/keys.js';

/**
 * `count` held slots of `model`, one per node `busy-00000…` that is not in the store, written as
 * claimSlot writes them (node partition, held-slot index, model index), 100 at a time.
 */
export async function loadHeldSlots(
  ctx: AppContext,
  count: number,
  model: string,
  opts: { deadlineMs?: number } = {},
): Promise<void> {
  for (let i = 0; i < count; i += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, (_, j) => {
        const nodeId = `busy-${String(i + j).padStart(5, '0')}`;
        return ctx.store.put<SlotItem>({
          ...taskQueueKeys.nodeSlot(nodeId, 0),
          ...taskQueueKeys.heldSlotIndex(nodeId, 0),
          ...taskQueueKeys.slotModelIndex(model, nodeId, 0),
          nodeId,
          slot: 0,
          taskId: `task-${nodeId}`,
          model,
          claimedAtMs: ctx.now(),
          ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}),
        });
      }),
    );
}
