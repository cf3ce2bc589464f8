import type { AppContext } from '../core/context.js';
import { realtimeKeys } from '../core/keys.js';
import { GoneConnectionError } from '../ports/connections.js';
import type { StoreItem } from '../ports/store.js';

/** The streams of the WebSocket API; `logs` is per node; `cluster` is the Cluster Manager's bare `/ws`. */
export type ChannelName = 'metrics' | 'logs' | 'doctor' | 'cluster';

export interface Subscription {
  channel: ChannelName;
  /** The node of a `logs` subscription (its id, resolved from the id or name given). */
  nodeId?: string;
  /** A `logs` subscription that opted in to one container's output (`?container=`), by instance id. */
  instanceId?: string;
}

export interface ConnectionItem extends StoreItem {
  connectionId: string;
  channel: ChannelName;
  nodeId?: string;
  instanceId?: string;
  connectedAt: string;
}

/** The fan-out partition of a subscription: `metrics`, `doctor`, `logs#<nodeId>`. */
export const channelKey = (s: Subscription) =>
  s.channel !== 'logs' ? s.channel : s.instanceId ? `output#${s.nodeId}#${s.instanceId}` : `logs#${s.nodeId}`;

export async function saveConnection(
  ctx: AppContext,
  connectionId: string,
  sub: Subscription,
): Promise<ConnectionItem> {
  const now = ctx.now();
  const expiresAt = Math.floor(now / 1000) + realtimeKeys.connectionTtlSeconds;
  const item: ConnectionItem = {
    ...realtimeKeys.connection(connectionId),
    ...realtimeKeys.channelIndex(channelKey(sub), connectionId, expiresAt),
    connectionId,
    channel: sub.channel,
    ...(sub.nodeId ? { nodeId: sub.nodeId } : {}),
    ...(sub.instanceId ? { instanceId: sub.instanceId } : {}),
    connectedAt: new Date(now).toISOString(),
    expiresAt,
  };
  await ctx.store.put(item);
  // Connections are saved in time order with one TTL: the latest save's expiry bounds them all.
  await ctx.store.put({ ...realtimeKeys.liveUntil, expiresAt: item.expiresAt });
  return item;
}

/**
 * Whether any connection record can still be live: one read instead of a query per channel, so a
 * deployment nobody watches pushes nothing. Never wrong the other way: every record expires by then.
 */
export async function anyLiveConnection(ctx: AppContext): Promise<boolean> {
  // A query of the one item: eventually consistent, half a read unit (a get reads strongly).
  const { items } = await ctx.store.query<StoreItem & { expiresAt?: number }>(realtimeKeys.liveUntil.pk, {
    limit: 1,
  });
  const until = items[0]?.expiresAt;
  return until !== undefined && until > Math.floor(ctx.now() / 1000);
}

export async function getConnection(
  ctx: AppContext,
  connectionId: string,
): Promise<ConnectionItem | undefined> {
  const k = realtimeKeys.connection(connectionId);
  return ctx.store.get<ConnectionItem>(k.pk, k.sk);
}

/** Idempotent: a disconnect and a failed send may both remove the same record. */
export async function removeConnection(ctx: AppContext, connectionId: string): Promise<void> {
  const k = realtimeKeys.connection(connectionId);
  await ctx.store.delete(k.pk, k.sk);
}

/** Connection records a fan-out reads, then serves, at a time (about 16 fill a 4 KB read unit). */
export const FANOUT_PAGE_SIZE = 200;

/**
 * The live connections of a channel, a page at a time. The key condition starts at the first
 * unexpired record (TTL deletion lags by days), so a channel nobody watches costs one empty query
 * (half a read unit) whatever its expired records and the other channels hold.
 */
export async function* channelPages(ctx: AppContext, channel: string): AsyncGenerator<ConnectionItem[]> {
  const from = realtimeKeys.channelLiveFrom(Math.floor(ctx.now() / 1000));
  let cursor: string | undefined;
  do {
    const page = await ctx.store.query<ConnectionItem>(realtimeKeys.channelPk(channel), {
      index: 'gsi1',
      between: [from, '\uffff'],
      limit: FANOUT_PAGE_SIZE,
      ...(cursor ? { cursor } : {}),
    });
    if (page.items.length) yield page.items;
    cursor = page.cursor;
  } while (cursor);
}

export async function channelConnections(ctx: AppContext, channel: string): Promise<ConnectionItem[]> {
  const all: ConnectionItem[] = [];
  for await (const page of channelPages(ctx, channel)) all.push(...page);
  return all;
}

export interface FanOut {
  delivered: number;
  /** Connections found gone and removed. */
  pruned: number;
}

/**
 * Sends one frame to one connection; a gone connection loses its record. Other send errors are
 * logged and swallowed: one bad connection must not stop the others' deliveries.
 */
export async function sendTo(
  ctx: AppContext,
  connectionId: string,
  message: object,
): Promise<'sent' | 'gone' | 'failed'> {
  if (!ctx.connections) return 'failed';
  try {
    await ctx.connections.send(connectionId, JSON.stringify(message));
    return 'sent';
  } catch (error) {
    if (error instanceof GoneConnectionError) {
      await removeConnection(ctx, connectionId).catch((e: unknown) =>
        ctx.logger.warn('could not remove a gone connection', { connectionId, error: e as Error }),
      );
      return 'gone';
    }
    ctx.logger.warn('websocket send failed', { connectionId, error: error as Error });
    return 'failed';
  }
}

/**
 * The publisher: one frame to every connection of a channel, a page of connections at a time (in
 * parallel within it), pruning the dead ones. A function as message is called only when someone
 * listens (building a frame costs reads). A runtime that holds its connections and has none open
 * is not asked the table (records left by a previous process are pruned by the periodic push, push.ts).
 */
export async function broadcast(
  ctx: AppContext,
  channel: string,
  message: object | (() => Promise<object | object[]>),
): Promise<FanOut> {
  const out: FanOut = { delivered: 0, pruned: 0 };
  if (!ctx.connections || ctx.connections.idle?.()) return out;
  let frames: object[] | undefined;
  for await (const targets of channelPages(ctx, channel)) {
    if (!frames) {
      const built = typeof message === 'function' ? await message() : message;
      // A message too large for one frame comes as several, sent in order to each connection.
      frames = Array.isArray(built) ? built : [built];
    }
    const outcomes = await Promise.all(
      targets.map(async (c) => {
        let outcome: Awaited<ReturnType<typeof sendTo>> = 'sent';
        for (const frame of frames!) if ((outcome = await sendTo(ctx, c.connectionId, frame)) !== 'sent') break;
        return outcome;
      }),
    );
    out.delivered += outcomes.filter((o) => o === 'sent').length;
    out.pruned += outcomes.filter((o) => o === 'gone').length;
  }
  return out;
}
