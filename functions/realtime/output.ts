import type { AppContext } from '../core/context.js';
import type { AppEvent } from '../core/events.js';
import { realtimeKeys } from '../core/keys.js';
import { dispatchCommand, waitForCommands } from '../nodes/commands.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import { broadcast, channelConnections, channelKey, type Subscription } from './connections.js';

/**
 * Container output on `/ws/logs/{node}?container=<instance_id>`: the subscriber opted in to one
 * container's output. Its agent streams new lines (container.follow, batched and capped at
 * 100 lines a second by the agent) as `container.output` events for a lease that the periodic push
 * renews while anyone still listens; a new subscriber first gets the container's last lines.
 */
export interface OutputMessage {
  type: 'output';
  node_id: string;
  instance_id: string;
  timestamp: string;
  lines: string[];
  /** Lines the agent left out since the previous frame (the container wrote faster than the rate limit). */
  dropped: number;
  /** true on the first frame of a subscription: the container's last lines, written before it subscribed. */
  tail?: boolean;
}

/** Lines a new subscriber gets first. */
export const OUTPUT_TAIL_LINES = 50;
/** Under API Gateway's 128 KB frame limit. */
const MAX_OUTPUT_FRAME_BYTES = 100 * 1024;

interface FollowItem extends StoreItem {
  nodeId: string;
  instanceId: string;
  renewAtMs: number;
}

/** The agent's lease: three pushes long (one a minute on AWS), at least two minutes. */
const leaseSeconds = (ctx: AppContext) =>
  Math.min(900, Math.max(120, 3 * ctx.config.WS_PUSH_INTERVAL_SECONDS));

async function follow(ctx: AppContext, nodeId: string, instanceId: string, tail: number): Promise<string> {
  const seconds = leaseSeconds(ctx);
  const commandId = await dispatchCommand(ctx, nodeId, {
    type: 'container.follow',
    instanceId,
    seconds,
    tail,
  });
  const item: FollowItem = {
    ...realtimeKeys.follow(nodeId, instanceId),
    nodeId,
    instanceId,
    // Renewed a third of the way in: two pushes may be missed before the agent stops.
    renewAtMs: ctx.now() + (seconds * 1000) / 3,
  };
  await ctx.store.put(item);
  return commandId;
}

/** Frames of at most MAX_OUTPUT_FRAME_BYTES, in order. */
export function outputFrames(base: Omit<OutputMessage, 'lines'>, lines: string[]): OutputMessage[] {
  const frames: OutputMessage[] = [];
  let current: string[] = [];
  let size = Buffer.byteLength(JSON.stringify({ ...base, lines: [] }));
  for (const line of lines) {
    const bytes = Buffer.byteLength(JSON.stringify(line)) + 1;
    if (current.length && size + bytes > MAX_OUTPUT_FRAME_BYTES) {
      frames.push({ ...base, lines: current });
      current = [];
      size = Buffer.byteLength(JSON.stringify({ ...base, lines: [] }));
    }
    current.push(line);
    size += bytes;
  }
  if (current.length || !frames.length) frames.push({ ...base, lines: current });
  // Dropped lines are counted once, on the last frame.
  return frames.map((f, i) => (i === frames.length - 1 ? f : { ...f, dropped: 0 }));
}

/** A new container subscription: starts (or extends) the follow and answers the container's last lines. */
export async function outputSnapshot(ctx: AppContext, sub: Subscription): Promise<OutputMessage[]> {
  const nodeId = sub.nodeId!;
  const instanceId = sub.instanceId!;
  const commandId = await follow(ctx, nodeId, instanceId, OUTPUT_TAIL_LINES);
  const { done } = await waitForCommands(ctx, [commandId], Math.max(ctx.config.COMMAND_WAIT_MS, 10_000));
  const logs = done[0]?.status === 'succeeded' ? (done[0].output as { logs?: unknown }).logs : undefined;
  const lines =
    typeof logs === 'string' ? logs.split('\n').filter((l, i, all) => l || i < all.length - 1) : [];
  return outputFrames(
    {
      type: 'output',
      node_id: nodeId,
      instance_id: instanceId,
      timestamp: new Date(ctx.now()).toISOString(),
      dropped: 0,
      tail: true,
    },
    lines,
  );
}

/** From the periodic push: renews the leases that still have subscribers, forgets the others. */
export async function renewFollows(ctx: AppContext): Promise<void> {
  const now = ctx.now();
  for (const f of await queryAll<FollowItem>(ctx.store, realtimeKeys.followPk)) {
    const listeners = await channelConnections(
      ctx,
      channelKey({ channel: 'logs', nodeId: f.nodeId, instanceId: f.instanceId }),
    );
    if (!listeners.length) await ctx.store.delete(f.pk, f.sk);
    else if (now >= f.renewAtMs) await follow(ctx, f.nodeId, f.instanceId, 0);
  }
}

/** `agent.container.output`: the lines to the container's subscribers. Never throws (an event is not redelivered for a push). */
export async function onContainerOutput(
  e: AppEvent<'agent.container.output'>,
  ctx: AppContext,
): Promise<void> {
  try {
    await broadcast(
      ctx,
      channelKey({ channel: 'logs', nodeId: e.nodeId, instanceId: e.instanceId }),
      async () =>
        outputFrames(
          {
            type: 'output',
            node_id: e.nodeId,
            instance_id: e.instanceId,
            timestamp: e.at,
            dropped: e.dropped,
          },
          e.lines,
        ),
    );
  } catch (error) {
    ctx.logger.warn('container output push failed', { nodeId: e.nodeId, error: error as Error });
  }
}
