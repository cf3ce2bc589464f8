/**
 * The live pushes of `/ws/metrics` and `/ws/doctor` in bounded invocations: a push reads at most
 * PUSH_ITEMS_PER_INVOCATION node-state records; a fleet past that goes on as `ws.push.shard`
 * events, one chain per node-state shard, each link sending the frames of what it read (as the
 * node sweep fans out). One read of a page serves both channels.
 */
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { SHARDS } from '../nodes/node-records.js';
import { AGGREGATE_MAX_AGE_MS, fleetAggregate } from '../nodes/fleet-aggregate.js';
import type { NodeItem } from '../nodes/nodes.js';
import { checkHealth } from '../system/health.js';
import { channelConnections, channelKey, sendTo } from './connections.js';
import {
  MAX_FRAME_BYTES,
  nodeProblems,
  packDoctor,
  packMetrics,
  readNodeState,
  type FrameTag,
} from './messages.js';

export type LiveChannel = 'metrics' | 'doctor';
export const LIVE_CHANNELS: readonly LiveChannel[] = ['metrics', 'doctor'];

/** Node-state records (two a node) one push invocation reads at most: its work holds at any fleet size. */
export const PUSH_ITEMS_PER_INVOCATION = 10_000;

export interface PushChain {
  /** When the push began: every frame of it carries this timestamp. */
  at: number;
  channels: LiveChannel[];
  /** One connection (a new subscriber's first frames), else every subscriber of each channel. */
  to?: string;
  budget: number;
}

export interface PushOutcome {
  /** Node-state records (and fallback reads) this invocation read. */
  read: number;
  frames: number;
  /** The rest went on as `ws.push.shard` events. */
  fannedOut: boolean;
}

async function listeners(ctx: AppContext, chain: Omit<PushChain, 'at'>): Promise<Map<LiveChannel, string[]>> {
  const out = new Map<LiveChannel, string[]>();
  if (!ctx.connections) return out;
  for (const channel of chain.channels) {
    const ids = chain.to
      ? [chain.to]
      : (await channelConnections(ctx, channelKey({ channel }))).map((c) => c.connectionId);
    if (ids.length) out.set(channel, ids);
  }
  return out;
}

/** Each connection gets its frames in order; a gone one is pruned (a new subscriber's is not: its handshake may still be completing). */
async function deliver(ctx: AppContext, ids: string[], frames: object[], direct: boolean): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      for (const frame of frames) {
        if (direct) await ctx.connections!.send(id, JSON.stringify(frame));
        else if ((await sendTo(ctx, id, frame)) !== 'sent') return;
      }
    }),
  );
}

const byName = (a: NodeItem, b: NodeItem) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0);

interface Segment {
  nodes: NodeItem[];
  tag?: FrameTag;
}

/** Builds and sends the frames of what was read; `tag`ged segments are shares of a fanned-out push. */
async function sendSegments(
  ctx: AppContext,
  chain: PushChain,
  targets: Map<LiveChannel, string[]>,
  segments: Segment[],
): Promise<number> {
  const timestamp = new Date(chain.at).toISOString();
  const now = ctx.now();
  let sent = 0;
  // By name, as the node list shows them.
  for (const s of segments) s.nodes.sort(byName);
  const metricsTo = targets.get('metrics');
  if (metricsTo) {
    const frames = segments.flatMap((s) => packMetrics(ctx, s.nodes, timestamp, MAX_FRAME_BYTES, s.tag));
    await deliver(ctx, metricsTo, frames, chain.to !== undefined);
    sent += frames.length;
  }
  const doctorTo = targets.get('doctor');
  if (doctorTo) {
    const health = await checkHealth(ctx);
    const tagged = segments.some((s) => s.tag);
    // A share sees only its nodes: the sweep's aggregate says whether others are offline.
    const offlineElsewhere = tagged
      ? ((agg) => (agg ? (agg.nodes ?? agg.onlineNodes) > agg.onlineNodes : false))(
          await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS),
        )
      : false;
    const frames = segments.flatMap((s) => {
      const problems = nodeProblems(ctx, s.nodes, now);
      const status =
        health.status === 'unhealthy'
          ? ('unhealthy' as const)
          : problems.length || offlineElsewhere
            ? ('degraded' as const)
            : ('healthy' as const);
      return packDoctor({ status, timestamp, health }, problems, MAX_FRAME_BYTES, s.tag);
    });
    await deliver(ctx, doctorTo, frames, chain.to !== undefined);
    sent += frames.length;
  }
  return sent;
}

/**
 * A push (the periodic one, or a new subscriber's first frames with `to`): reads the shards in
 * turn within its budget. A fleet that fits goes out as before (one frame, or `part` of `parts`);
 * past the budget the rest goes on as `ws.push.shard` events and every frame is tagged with its
 * shard and link. Nothing is read when nobody listens.
 */
export async function pushLive(
  ctx: AppContext,
  options: { channels?: readonly LiveChannel[]; to?: string; budget?: number } = {},
): Promise<PushOutcome> {
  const chain: PushChain = {
    at: ctx.now(),
    channels: [...(options.channels ?? LIVE_CHANNELS)],
    ...(options.to ? { to: options.to } : {}),
    budget: options.budget ?? PUSH_ITEMS_PER_INVOCATION,
  };
  const targets = await listeners(ctx, chain);
  if (!targets.size) return { read: 0, frames: 0, fannedOut: false };
  chain.channels = [...targets.keys()];
  let left = chain.budget;
  let read = 0;
  const segments: (Segment & { shard: number; done: boolean })[] = [];
  let fannedOut = false;
  const continuations: PushLink[] = [];
  for (const [i, shard] of SHARDS.entries()) {
    const seg = await readNodeState(ctx, shard, undefined, left);
    left -= seg.read;
    read += seg.read;
    segments.push({ nodes: seg.nodes, shard, done: !seg.cursor });
    const rest = SHARDS.slice(i + 1);
    if (seg.cursor || (left <= 0 && rest.length)) {
      if (seg.cursor) continuations.push({ ...chain, shard, cursor: seg.cursor, link: 1 });
      for (const s of rest) continuations.push({ ...chain, shard: s, link: 0 });
      fannedOut = true;
      break;
    }
  }
  const frames = await sendSegments(
    ctx,
    chain,
    targets,
    fannedOut
      ? segments.map((s) => ({ nodes: s.nodes, tag: { shard: s.shard, link: 0, last: s.done } }))
      : [{ nodes: segments.flatMap((s) => s.nodes) }],
  );
  // The chains go on once this invocation's frames are out.
  for (const link of continuations) await emit(ctx, { type: 'ws.push.shard', ...link });
  return { read, frames, fannedOut };
}

export type PushLink = PushChain & { shard: number; cursor?: string; link: number };

/**
 * One link of a fanned-out push: up to its budget of one shard from `cursor`, and its frames.
 * Returns the next link, if any, for the caller to send (the `ws.push.shard` handler does).
 */
export async function pushShard(ctx: AppContext, link: PushLink): Promise<PushOutcome & { next?: PushLink }> {
  const targets = await listeners(ctx, link);
  // Everyone left: the chain stops.
  if (!targets.size) return { read: 0, frames: 0, fannedOut: false };
  const seg = await readNodeState(ctx, link.shard, link.cursor, link.budget);
  const next = seg.cursor
    ? { ...link, channels: [...targets.keys()], cursor: seg.cursor, link: link.link + 1 }
    : undefined;
  const frames = await sendSegments(ctx, link, targets, [
    { nodes: seg.nodes, tag: { shard: link.shard, link: link.link, last: !seg.cursor } },
  ]);
  return { read: seg.read, frames, fannedOut: false, ...(next ? { next } : {}) };
}
