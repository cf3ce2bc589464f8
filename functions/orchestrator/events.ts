import * as z from 'zod';
import type { AreaEventHandlers, AreaEvents } from '../core/events.js';
import { emit } from '../core/events.js';
import { retireSilentNodes } from '../fleet/drain.js';
import { nodesToRetire, sweepNodes } from '../fleet/nodes.js';
import { nodeInstances } from './model.js';
import { reconcile } from './reconciler.js';
import { instanceEndpointsDown } from './registry.js';
import { publishFleetGauges } from '../observability/fleet-gauges.js';

/** Plan and apply, for one image or all. */
export const reconcileEvent = z.object({ imageId: z.string().optional() });
/** The periodic sweep (the nodes-sweep schedule). */
export const nodesSweep = z.looseObject({});

export const orchestratorEvents = {
  reconcile: reconcileEvent,
  'nodes.sweep': nodesSweep,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    reconcile: typeof reconcileEvent;
    'nodes.sweep': typeof nodesSweep;
  }
}

/** Event types the orchestrator consumes. All idempotent: SQS delivers at least once. */
export const orchestratorEventHandlers: AreaEventHandlers = {
  reconcile: async (event, ctx) => {
    await reconcile(ctx, event.imageId ? { imageId: event.imageId } : {});
  },
  /**
   * Silent nodes go offline (their endpoints DOWN), nodes silent past NODE_RETIRE_AFTER_SECONDS are
   * retired, then a full reconcile moves their copies.
   */
  'nodes.sweep': async (_event, ctx) => {
    for (const nodeId of await sweepNodes(ctx)) {
      for (const inst of await nodeInstances(ctx, nodeId)) await instanceEndpointsDown(ctx, inst);
    }
    await retireSilentNodes(ctx, await nodesToRetire(ctx));
    await emit(ctx, { type: 'reconcile' });
    await publishFleetGauges(ctx).catch((error: unknown) =>
      ctx.logger.warn('fleet gauges failed', { error: error as Error }),
    );
  },
};
