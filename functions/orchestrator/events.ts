import type { EventHandler } from '../core/events.js';
import { emit } from '../core/events.js';
import { sweepNodes } from '../fleet/nodes.js';
import { nodeInstances } from './model.js';
import { reconcile } from './reconciler.js';
import { instanceEndpointsDown } from './registry.js';

/** Event types the orchestrator consumes. All idempotent: SQS delivers at least once. */
export const orchestratorEventHandlers: Record<string, EventHandler> = {
  /** `{type:'reconcile', imageId?}`: plan and apply, for one image or all. */
  reconcile: async (event, ctx) => {
    const imageId = typeof event.imageId === 'string' ? event.imageId : undefined;
    await reconcile(ctx, imageId ? { imageId } : {});
  },
  /** The periodic sweep: silent nodes go offline (their endpoints DOWN), then a full reconcile moves their copies. */
  'nodes.sweep': async (_event, ctx) => {
    for (const nodeId of await sweepNodes(ctx)) {
      for (const inst of await nodeInstances(ctx, nodeId)) await instanceEndpointsDown(ctx, inst);
    }
    await emit(ctx, { type: 'reconcile' });
  },
};
