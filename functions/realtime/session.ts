import { bearerPrincipal, resetBootstrapKeyCache } from '../core/access.js';
import type { AppContext } from '../core/context.js';
import { getNode, resolveNode } from '../nodes/nodes.js';
import {
  broadcast,
  channelKey,
  getConnection,
  removeConnection,
  saveConnection,
  type ChannelName,
  type Subscription,
} from './connections.js';
import { clusterHello } from './cluster-stream.js';
import { outputSnapshot, renewFollows } from './output.js';
import type { LogLevel, LogMessage } from './messages.js';
import { pushLive } from './push.js';

/** What a connect request carries, in either runtime. */
export interface ConnectRequest {
  /** `/ws/metrics`, `/ws/logs/<node>`, `/ws/doctor`, `/ws` (the cluster events); or API Gateway's `/` with `?channel=`. */
  path: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | undefined>;
}

/** A refused connect: API Gateway answers `status` to the handshake; the local server closes with `closeCode`. */
export interface Refusal {
  ok: false;
  status: 400 | 401 | 404;
  closeCode: 4400 | 4401 | 4404;
  reason: string;
}
export type Opened = { ok: true; subscription: Subscription } | Refusal;

const CHANNELS: readonly ChannelName[] = ['metrics', 'logs', 'doctor', 'cluster'];
const refuse = (status: Refusal['status'], reason: string): Refusal => ({
  ok: false,
  status,
  closeCode: (4000 + status) as Refusal['closeCode'],
  // A close reason may hold 123 bytes at most.
  reason: Buffer.from(reason).subarray(0, 120).toString(),
});

/**
 * The spec's paths, or the single-URL form API Gateway WebSocket APIs need (`?channel=logs&node_id=`).
 * No channel at all is the Cluster Manager's `/ws` event stream.
 */
export function parseChannel(
  req: ConnectRequest,
): { channel: ChannelName; node?: string; container?: string } | Refusal {
  const segments = req.path
    .split('?')[0]!
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  if (segments[0] === 'ws') segments.shift();
  const named = segments[0] ?? req.query.channel ?? 'cluster';
  if (!CHANNELS.includes(named as ChannelName) || segments.length > (named === 'logs' ? 2 : 1))
    return refuse(
      404,
      `Unknown channel ${named.slice(0, 40)}: use /ws, /ws/metrics, /ws/logs/{node_id} or /ws/doctor`,
    );
  const channel = named as ChannelName;
  if (channel !== 'logs') return { channel };
  const node = segments[1] ?? req.query.node_id;
  if (!node) return refuse(400, 'The logs channel needs a node: /ws/logs/{node_id} or ?node_id=');
  const container = req.query.container;
  if (container !== undefined && !/^[\w.:@-]{1,128}$/.test(container))
    return refuse(400, 'container must be a container (instance) id');
  return { channel, node, ...(container ? { container } : {}) };
}

/** As user routes: `Authorization: Bearer <key or JWT>`, or `?token=<key or JWT>` since browsers cannot set WebSocket headers. Any role may watch. */
async function authorised(ctx: AppContext, req: ConnectRequest): Promise<boolean> {
  if (!ctx.config.API_AUTH) return true;
  const header = Object.entries(req.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const given = /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim() ?? req.query.token;
  return (await bearerPrincipal(ctx, given).catch(() => undefined)) !== undefined;
}
export const resetWsApiKeyCache = () => resetBootstrapKeyCache();

/** Validates a connect, then records the connection under its channel. Nothing is written on a refusal. */
export async function openConnection(
  ctx: AppContext,
  connectionId: string,
  req: ConnectRequest,
): Promise<Opened> {
  if (!(await authorised(ctx, req))) return refuse(401, 'Invalid or missing API key');
  const parsed = parseChannel(req);
  if ('ok' in parsed) return parsed;
  let subscription: Subscription = { channel: parsed.channel };
  if (parsed.node !== undefined) {
    const node = await resolveNode(ctx, parsed.node);
    if (!node) return refuse(404, `Node ${parsed.node.slice(0, 80)} not found`);
    subscription = { channel: 'logs', nodeId: node.nodeId };
    if (parsed.container !== undefined) {
      // Opt-in to one container's output: it must be one this node reports.
      if (!node.containerStats?.[parsed.container])
        return refuse(404, `Container ${parsed.container} not found on node ${node.nodeName}`.slice(0, 120));
      subscription = { ...subscription, instanceId: parsed.container };
    }
  }
  await saveConnection(ctx, connectionId, subscription);
  return { ok: true, subscription };
}

export const closeConnection = removeConnection;

/**
 * The first frames of a connection: the current metrics or health, or a log line saying what is
 * streamed. Metrics and health are sent to `connectionId` by a push of their own (bounded links,
 * push.ts), so nothing is returned for them.
 */
export async function snapshot(ctx: AppContext, sub: Subscription, connectionId: string): Promise<object[]> {
  if (sub.channel === 'metrics' || sub.channel === 'doctor') {
    await pushLive(ctx, { channels: [sub.channel], to: connectionId });
    return [];
  }
  if (sub.channel === 'cluster') return [await clusterHello(ctx)];
  if (sub.instanceId) return outputSnapshot(ctx, sub);
  const node = await getNode(ctx, sub.nodeId!);
  return [
    logMessage(
      ctx,
      sub.nodeId!,
      node?.nodeName ?? sub.nodeId!,
      'info',
      `Streaming the logs of node ${node?.nodeName ?? sub.nodeId}`,
    ),
  ];
}

/**
 * Sends a connection its snapshot (on AWS from the events worker, once `$connect` has returned:
 * API Gateway refuses posts to a connection before that). Unknown connection: nothing to do.
 */
export async function sendSnapshot(ctx: AppContext, connectionId: string): Promise<void> {
  const conn = await getConnection(ctx, connectionId);
  if (!conn || !ctx.connections) return;
  // Not pruned on failure: a connection still completing its handshake looks gone; TTL and the next fan-out clean up.
  for (const frame of await snapshot(ctx, conn, connectionId))
    await ctx.connections.send(connectionId, JSON.stringify(frame));
}

/**
 * The periodic push of `/ws/metrics` and `/ws/doctor` (read only when someone listens, in bounded
 * invocations: push.ts), and the container-output leases.
 */
export async function pushPeriodic(ctx: AppContext, budget?: number): Promise<void> {
  await pushLive(ctx, budget ? { budget } : {});
  await renewFollows(ctx);
}

function logMessage(
  ctx: AppContext,
  nodeId: string,
  nodeName: string,
  level: LogLevel,
  message: string,
): LogMessage {
  return {
    type: 'log',
    node_id: nodeId,
    node_name: nodeName,
    timestamp: new Date(ctx.now()).toISOString(),
    level,
    message,
  };
}

/**
 * The Notifier: one line on a node's `/ws/logs` stream. Never throws: a happening is recorded
 * whether or not anyone watches, and a push failure must not fail (and redeliver) its event.
 */
export async function notifyNodeLog(
  ctx: AppContext,
  nodeId: string,
  level: LogLevel,
  message: string | (() => Promise<string>),
): Promise<void> {
  try {
    await broadcast(ctx, channelKey({ channel: 'logs', nodeId }), async () => {
      // Built only when someone watches (a function: what it reads is read only then).
      const [node, text] = await Promise.all([
        getNode(ctx, nodeId),
        typeof message === 'string' ? message : message(),
      ]);
      return logMessage(ctx, nodeId, node?.nodeName ?? nodeId, level, text);
    });
  } catch (error) {
    ctx.logger.warn('node log push failed', { nodeId, error: error as Error });
  }
}
