import * as z from 'zod';
import type { AreaEventHandlers, AreaEvents } from '../core/events.js';
import { emit } from '../core/events.js';
import { retireSilentNodes } from '../fleet/drain.js';
import { getNode, sweepShard } from '../fleet/nodes.js';
import { SHARDS } from '../fleet/node-records.js';
import { nodeInstances } from './model.js';
import { reconcile } from './reconciler.js';
import { instanceEndpointsDown } from './registry.js';
import { publishFleetGauges } from '../observability/fleet-gauges.js';

/** Plan and apply, for one image or all. */
export const reconcileEvent = z.object({ imageId: z.string().optional() });
/** The periodic sweep (the nodes-sweep schedule). */
export const nodesSweep = z.looseObject({});
/** One shard's part of the sweep, from `cursor` when an earlier invocation ran out of budget. */
export const nodesSweepShard = z.object({
  shard: z.number().int().nonnegative(),
  cursor: z.string().optional(),
});

export const orchestratorEvents = {
  reconcile: reconcileEvent,
  'nodes.sweep': nodesSweep,
  'nodes.sweep.shard': nodesSweepShard,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    reconcile: typeof reconcileEvent;
    'nodes.sweep': typeof nodesSweep;
    'nodes.sweep.shard': typeof nodesSweepShard;
  }
}

/** Event types the orchestrator consumes. All idempotent: SQS delivers at least once. */
export const orchestratorEventHandlers: AreaEventHandlers = {
  reconcile: async (event, ctx) => {
    await reconcile(ctx, event.imageId ? { imageId: event.imageId } : {});
  },
  /**
   * Fans the sweep out, one `nodes.sweep.shard` per shard of the node state (each goes on in
   * bounded invocations), then the minute's full reconcile.
   */
  'nodes.sweep': async (_event, ctx) => {
    for (const shard of SHARDS) await emit(ctx, { type: 'nodes.sweep.shard', shard });
    await emit(ctx, { type: 'reconcile' });
    await publishFleetGauges(ctx).catch((error: unknown) =>
      ctx.logger.warn('fleet gauges failed', { error: error as Error }),
    );
  },
  /**
   * Silent nodes of one shard go offline (their endpoints DOWN), nodes silent past
   * NODE_RETIRE_AFTER_SECONDS are retired, a reconcile moves their copies; a shard larger than one
   * invocation's budget goes on in the next (its cursor).
   */
  'nodes.sweep.shard': async (event, ctx) => {
    const part = await sweepShard(ctx, event.shard, event.cursor);
    for (const nodeId of part.wentOffline) {
      for (const inst of await nodeInstances(ctx, nodeId)) await instanceEndpointsDown(ctx, inst);
    }
    const silent = await Promise.all(part.toRetire.map((l) => getNode(ctx, l.nodeId)));
    const retired = await retireSilentNodes(
      ctx,
      silent.filter((n) => n !== undefined),
    );
    if (part.cursor) await emit(ctx, { type: 'nodes.sweep.shard', shard: event.shard, cursor: part.cursor });
    if (part.wentOffline.length || retired.length) await emit(ctx, { type: 'reconcile' });
  },
};
