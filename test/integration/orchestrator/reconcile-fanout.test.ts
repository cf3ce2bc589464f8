/**
 * Issue 16: the whole fleet's reconcile (the minute's safety net) runs image by image, a bounded
 * number in one invocation and each other image (and every global service) as its own event.
 * Simulated agents through the embedded runtime (bench/cost/fleet.ts); counts, never timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { keys } from '../../../functions/core/keys.js';
import { changeService, nextService } from '../../../functions/orchestrator/desired-state.js';
import { serviceSlots } from '../../../functions/orchestrator/model.js';
import {
  RECONCILE_IMAGES_PER_INVOCATION,
  reconcileFanOut,
} from '../../../functions/orchestrator/reconciler.js';

describe('the whole fleet reconcile, image by image', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  it('reconciles the first images itself and sends one event for each other image and each global service', async () => {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    const plain = Array.from(
      { length: RECONCILE_IMAGES_PER_INVOCATION + 1 },
      (_, i) => `fan/app${String(i).padStart(2, '0')}:1`,
    );
    const global = 'fan/agent:1';
    for (const image of [...plain, global])
      await changeService(ctx, image, async (current) => ({
        next: nextService(ctx, image, current, 1, {}),
        wanted: 1,
      }));
    const g = keys.service(global);
    await ctx.store.update(g.pk, g.sk, { set: { global: true } });
    for (const image of [...plain, global]) expect(await serviceSlots(ctx, image)).toHaveLength(0);

    await fleet.settle();
    fleet.meter.reset();
    const fan = await reconcileFanOut(ctx);
    expect(fan).toEqual({ here: RECONCILE_IMAGES_PER_INVOCATION, emitted: 2 });
    await fleet.settle();
    // One event invocation for each image not reconciled here (one plain, the global one).
    expect(fleet.meter.total((e) => e.label === 'event reconcile').lambdaInvocations).toBe(2);
    for (const image of plain) expect(await serviceSlots(ctx, image)).toHaveLength(1);
    // The global service: one copy on each of the two nodes.
    const globalSlots = await serviceSlots(ctx, global);
    expect(new Set(globalSlots.map((s) => s.nodeId)).size).toBe(2);
  }, 120_000);
});
