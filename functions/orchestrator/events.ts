import * as z from 'zod';
import type { AreaEventHandlers, AreaEvents } from '../core/events.js';
import { emit } from '../core/events.js';
import { retireSilentNodes } from '../nodes/drain.js';
import { SWEEP_ITEMS_PER_INVOCATION, getNode, indexRepairDue, sweepShard } from '../nodes/nodes.js';
import type { AppContext } from '../core/context.js';
import { SHARDS } from '../nodes/node-records.js';
import { storePart, sumParts, type FleetPart } from '../nodes/fleet-aggregate.js';
import { reconcile, reconcileFanOut, reconcileGlobalFrom } from './reconciler.js';
import { getService, nodeInstances } from './model.js';
import { instanceEndpointsDown } from './registry.js';
import { rolloutCopy, rolloutLink } from './rollout.js';
import { publishFleetGauges } from '../observability/fleet-gauges.js';

/** Node ids per `training.strays` event (an event stays far under SQS's 256 KB). */
const STRAY_CHECK_NODES_PER_EVENT = 500;

/** Plan and apply, for one image or all. */
export const reconcileEvent = z.object({ imageId: z.string().optional() });
/** The periodic sweep (the minute schedule runs it, functions/minute.ts). */
/** Records one invocation reads (default SWEEP_ITEMS_PER_INVOCATION); passed on to its continuations. */
const budget = z.number().int().positive().optional();
export const nodesSweep = z.looseObject({ budget });
/** One shard's part of the sweep, from `cursor` when an earlier invocation ran out of budget. */
export const nodesSweepShard = z.object({
  shard: z.number().int().nonnegative(),
  cursor: z.string().optional(),
  budget,
  /** When the sweep began, and this invocation's place in its shard's chain: its part of the fleet aggregate. */
  sweep: z.number().optional(),
  link: z.number().int().nonnegative().optional(),
  /** This sweep repairs the eligible-node and free-capacity indexes (at most every 5 minutes). */
  repair: z.boolean().optional(),
});

/** One link of a global service's reconcile that outgrew one invocation (global.ts). */
export const reconcileGlobalEvent = z.object({
  imageId: z.string().min(1),
  shard: z.number().int().nonnegative(),
  cursor: z.string().optional(),
  link: z.number().int().nonnegative(),
  counted: z.number().int().nonnegative(),
  budget: z.number().int().positive(),
  /** The chain's count of the image's copies by status so far, and the image's moves at its start. */
  copies: z.record(z.string(), z.number().int().nonnegative()).optional(),
  moves: z.number().int().optional(),
});

/** One page of a limits change's copies past the request's (rollout.ts), from `cursor`. */
export const resourcesRolloutEvent = z.object({
  imageId: z.string().min(1),
  rollout: z.string().min(1),
  cursor: z.string().min(1),
});

/** A rollout's pending copy, looked at again until it runs (rollout.ts); `look` counts the looks. */
export const resourcesRolloutCopyEvent = z.object({
  imageId: z.string().min(1),
  rollout: z.string().min(1),
  instanceId: z.string().min(1),
  look: z.number().int().positive(),
});

export const orchestratorEvents = {
  reconcile: reconcileEvent,
  'reconcile.global': reconcileGlobalEvent,
  'resources.rollout': resourcesRolloutEvent,
  'resources.rollout.copy': resourcesRolloutCopyEvent,
  'nodes.sweep': nodesSweep,
  'nodes.sweep.shard': nodesSweepShard,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    reconcile: typeof reconcileEvent;
    'reconcile.global': typeof reconcileGlobalEvent;
    'resources.rollout': typeof resourcesRolloutEvent;
    'resources.rollout.copy': typeof resourcesRolloutCopyEvent;
    'nodes.sweep': typeof nodesSweep;
    'nodes.sweep.shard': typeof nodesSweepShard;
  }
}

/** Event types the orchestrator consumes. All idempotent: SQS delivers at least once. */
export const orchestratorEventHandlers: AreaEventHandlers = {
  /** One image; without one, the whole fleet's reconcile fans out per image (reconcileFanOut). */
  reconcile: async (event, ctx) => {
    if (event.imageId) await reconcile(ctx, { imageId: event.imageId });
    else await reconcileFanOut(ctx);
  },
  /** A link of a global service's reconcile chain; a service gone or no longer global ends it. */
  'reconcile.global': async (event, ctx) => {
    const service = await getService(ctx, event.imageId);
    if (!service?.global) return;
    const { type: _type, imageId: _image, ...link } = event;
    const { next } = await reconcileGlobalFrom(ctx, service, link, false);
    if (next) await emit(ctx, { type: 'reconcile.global', imageId: event.imageId, ...next });
  },
  /** A page of a limits rollout; each link sends the next (a rollout superseded or gone ends it). */
  'resources.rollout': async (event, ctx) => rolloutLink(ctx, event),
  'resources.rollout.copy': async (event, ctx) => rolloutCopy(ctx, event),
  /**
   * Sweeps the node state shard after shard within one invocation's budget; a fleet larger than
   * that fans the rest out (`nodes.sweep.shard`, one chain per shard). Then the minute's full reconcile.
   */
  'nodes.sweep': async (event, ctx) => sweepNodes(ctx, { budget: event.budget, reconcile: 'emit' }),
  /** One shard's part of a sweep that outgrew one invocation, from where the last one stopped. */
  'nodes.sweep.shard': async (event, ctx) => {
    await sweepFrom(ctx, event.shard, event.cursor, event.budget, false, {
      sweep: event.sweep ?? ctx.now(),
      link: event.link ?? 0,
      repair: event.repair ?? false,
    });
  },
};

/**
 * The minute's sweep: the node state shard after shard, then the full reconcile, as an event of its
 * own (`emit`) or in this invocation (`inline`: the minute schedule, one invocation less), then the
 * fleet gauges.
 */
export async function sweepNodes(
  ctx: AppContext,
  options: { budget?: number; reconcile: 'emit' | 'inline' },
): Promise<void> {
  await sweepFrom(ctx, 0, undefined, options.budget, true, {
    sweep: ctx.now(),
    link: 0,
    repair: indexRepairDue(),
  });
  if (options.reconcile === 'inline') await reconcileFanOut(ctx);
  else await emit(ctx, { type: 'reconcile' });
  await publishFleetGauges(ctx).catch((error: unknown) =>
    ctx.logger.warn('fleet gauges failed', { error: error as Error }),
  );
}

/**
 * Silent nodes go offline (their endpoints DOWN), nodes silent past NODE_RETIRE_AFTER_SECONDS are
 * retired, a reconcile moves their copies. Reads at most `budget` records: what is left goes on in
 * `nodes.sweep.shard` invocations (this shard from its cursor; with `fanOut`, each shard not begun).
 */
async function sweepFrom(
  ctx: AppContext,
  first: number,
  cursor: string | undefined,
  budget = SWEEP_ITEMS_PER_INVOCATION,
  fanOut: boolean,
  chain: { sweep: number; link: number; repair: boolean },
): Promise<void> {
  let left = budget;
  let changed = false;
  let fannedOut = false;
  const parts: { shard: number; link: number; part: FleetPart; done: boolean }[] = [];
  const shards = fanOut ? SHARDS.slice(first) : [first];
  for (const [i, shard] of shards.entries()) {
    const part = await sweepShard(ctx, shard, shard === first ? cursor : undefined, left, chain.repair);
    left -= part.read;
    const link = shard === first ? chain.link : 0;
    parts.push({ shard, link, part: part.part, done: !part.cursor });
    for (const nodeId of part.wentOffline) {
      for (const inst of await nodeInstances(ctx, nodeId)) await instanceEndpointsDown(ctx, inst);
    }
    const silent = await Promise.all(part.toRetire.map((l) => getNode(ctx, l.nodeId)));
    const retired = await retireSilentNodes(
      ctx,
      silent.filter((n) => n !== undefined),
    );
    changed ||= part.wentOffline.length > 0 || retired.length > 0;
    // Every fifth minute (with the index repair), nodes holding run containers are checked for
    // strays by training, so no other sweep reads the fleet for them.
    if (chain.repair)
      for (let at = 0; at < part.runHolders.length; at += STRAY_CHECK_NODES_PER_EVENT)
        await emit(ctx, {
          type: 'training.strays',
          nodeIds: part.runHolders.slice(at, at + STRAY_CHECK_NODES_PER_EVENT),
        });
    const rest = shards.slice(i + 1);
    if (part.cursor || (left <= 0 && rest.length)) {
      const { sweep, repair } = chain;
      if (part.cursor)
        await emit(ctx, {
          type: 'nodes.sweep.shard',
          shard,
          cursor: part.cursor,
          budget,
          sweep,
          link: link + 1,
          repair,
        });
      for (const s of rest)
        await emit(ctx, { type: 'nodes.sweep.shard', shard: s, budget, sweep, link: 0, repair });
      fannedOut = true;
      break;
    }
  }
  // The fleet sample's input: one record when this invocation swept the whole fleet, else one per shard and link.
  if (fanOut && !fannedOut) await storePart(ctx, -1, 0, chain.sweep, sumParts(parts.map((p) => p.part)));
  else for (const p of parts) await storePart(ctx, p.shard, p.link, chain.sweep, p.part, p.done);
  if (changed && !fanOut) await emit(ctx, { type: 'reconcile' });
}
