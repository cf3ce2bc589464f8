/**
 * A node as readers see it: the types, the online test, and the reads that put a node's META
 * record together with its liveness and metrics records (node-records.ts).
 */
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { decodeKeyCursor, keyPage } from '../core/key-pages.js';
import { fleetKeys, keys } from '../core/keys.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import { SHARDS, liveKey, type LiveRecord, type MetricsRecord } from './node-records.js';
import type { CloudNodeFacts } from './join-tokens.js';
import type { Gpu, JetsonInfo, NodeDriver, NodeMetrics } from '../../protocol/messages.js';
import type { ReportedPolicy } from '../../protocol/policy.js';

/** Per-container numbers from the last heartbeat, kept on the node item (one write per heartbeat). */
export interface ContainerSample {
  state: string;
  kind: string;
  cpuPercent: number | null;
  memoryPercent: number | null;
  memoryUsageMb: number | null;
}

export interface NodeItem extends StoreItem {
  nodeId: string;
  nodeName: string;
  hostname: string;
  addresses: string[];
  arch: string;
  os: string;
  cpuCount: number;
  cpuModel?: string;
  memoryMb: number;
  diskGb: number;
  gpus: Gpu[];
  jetson?: JetsonInfo | null;
  /** As the agent declares them (replaced on every registration). */
  labels: Record<string, string>;
  /** Set through the API (Swarm node labels; null removes the agent's); win over the agent's and survive re-registration. */
  labelOverrides?: Record<string, string | null>;
  cluster?: string;
  agentVersion: string;
  engine?: { name: string; version: string; gpuRuntime: boolean };
  /** What the node lets containers do, as its agent reported it at its last registration. */
  policy?: ReportedPolicy;
  /** What runs a start there (protocol NODE_DRIVERS); absent on records of older agents: container. */
  driver?: NodeDriver;
  /** A rented cloud instance (joined with its instance's join token): which, its price, spot or not. */
  cloud?: CloudNodeFacts;
  /** SHA-256 of the agent's bearer token; the token itself is never stored. */
  tokenHash: string;
  registeredAt: string;
  /** Stored view, flipped by heartbeats and the sweep; readers use `isOnline`. */
  status: 'online' | 'offline';
  lastHeartbeat?: string;
  lastHeartbeatMs?: number;
  /** Its agent said it is stopping (node-stop.ts): offline at once, not after NODE_OFFLINE_AFTER_SECONDS. */
  stoppedAtMs?: number;
  metrics?: NodeMetrics;
  loadedModels: string[];
  containerStats: Record<string, ContainerSample>;
  /** Set through the API: no new placements here (kept across re-registration; uncordon clears it). */
  cordoned?: boolean;
  cordonedAt?: string;
  /** Cordoned by a drain: what runs here keeps being moved elsewhere until uncordoned. */
  draining?: boolean;
}

/** The labels placement and views use: the agent's, with the API's on top. */
export function nodeLabels(n: Pick<NodeItem, 'labels' | 'labelOverrides'>): Record<string, string> {
  const labels = { ...(n.labels ?? {}) };
  for (const [k, v] of Object.entries(n.labelOverrides ?? {})) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
  return labels;
}

/** The node's command queue (logical name; the adapter adds the deployment prefix). */
export const nodeQueue = (nodeId: string) => `node-${nodeId}`;

/** Commands may wait for an image pull before the agent acknowledges them. */
export const COMMAND_VISIBILITY_SECONDS = 120;
export const COMMAND_MAX_RECEIVES = 5;

export function heartbeatIntervalSeconds(ctx: AppContext): number {
  const third = Math.max(1, Math.floor(ctx.config.NODE_OFFLINE_AFTER_SECONDS / 3));
  return Math.min(ctx.config.NODE_HEARTBEAT_SECONDS, third);
}

/**
 * Online is computed from the last heartbeat on every read (and the agent's word that it stopped);
 * the stored status may lag until the sweep.
 */
export function isOnline(
  node: Pick<NodeItem, 'lastHeartbeatMs' | 'stoppedAtMs'>,
  ctx: AppContext,
  now = ctx.now(),
): boolean {
  return (
    node.lastHeartbeatMs !== undefined &&
    node.stoppedAtMs === undefined &&
    now - node.lastHeartbeatMs <= ctx.config.NODE_OFFLINE_AFTER_SECONDS * 1000
  );
}

/**
 * A node as readers see it: its META record with its liveness and last stored sample on top
 * (node-records.ts). Records written before the split carry those fields on META itself.
 */
export function assemble(meta: NodeItem, live?: LiveRecord, sample?: MetricsRecord): NodeItem {
  const node: NodeItem = {
    ...meta,
    status: live?.status ?? meta.status ?? 'offline',
    loadedModels: sample?.loadedModels ?? meta.loadedModels ?? [],
    containerStats: sample?.containerStats ?? meta.containerStats ?? {},
  };
  const beat = live ?? meta;
  if (beat.lastHeartbeatMs !== undefined) {
    node.lastHeartbeatMs = beat.lastHeartbeatMs;
    node.lastHeartbeat = beat.lastHeartbeat;
  }
  if (live?.stoppedAtMs !== undefined) node.stoppedAtMs = live.stoppedAtMs;
  const metrics = sample?.metrics ?? meta.metrics;
  if (metrics) node.metrics = metrics;
  return node;
}

/** The META record alone (credential checks, label changes). */
export async function getNodeRecord(ctx: AppContext, nodeId: string): Promise<NodeItem | undefined> {
  const k = keys.node(nodeId);
  return ctx.store.get<NodeItem>(k.pk, k.sk);
}

export async function getNode(ctx: AppContext, nodeId: string): Promise<NodeItem | undefined> {
  const meta = await getNodeRecord(ctx, nodeId);
  return meta ? withState(ctx, meta) : undefined;
}

/** A node's liveness and metrics records: one eventually consistent query (they sit side by side). */
export async function stateOf(
  ctx: AppContext,
  nodeId: string,
): Promise<{ live?: LiveRecord; sample?: MetricsRecord }> {
  const { items } = await ctx.store.query<LiveRecord | MetricsRecord>(liveKey(nodeId).pk, {
    prefix: fleetKeys.nodeStatePrefix(nodeId),
  });
  const out: { live?: LiveRecord; sample?: MetricsRecord } = {};
  for (const r of items) {
    if (r.sk.endsWith(fleetKeys.nodeLiveSuffix)) out.live = r as LiveRecord;
    else out.sample = r as MetricsRecord;
  }
  return out;
}

/** A META record with its liveness and metrics read and put on top. */
export async function withState(ctx: AppContext, meta: NodeItem): Promise<NodeItem> {
  const { live, sample } = await stateOf(ctx, meta.nodeId);
  return assemble(meta, live, sample);
}

/** By node id, or by node name (the Fleet Commander API names nodes like `agx0`). */
export async function resolveNode(ctx: AppContext, idOrName: string): Promise<NodeItem | undefined> {
  const byId = await getNode(ctx, idOrName);
  if (byId) return byId;
  const guard = keys.nodeName(idOrName);
  const named = await ctx.store
    .get<StoreItem & { nodeId: string }>(guard.pk, guard.sk)
    .catch(() => undefined);
  return named ? getNode(ctx, named.nodeId) : undefined;
}

/** Every node's liveness and metrics records, by node id. */
async function allState(
  ctx: AppContext,
): Promise<{ live: Map<string, LiveRecord>; sample: Map<string, MetricsRecord> }> {
  const shards = await Promise.all(
    SHARDS.map((s) => queryAll<LiveRecord | MetricsRecord>(ctx.store, fleetKeys.nodeStatePk(s))),
  );
  const live = new Map<string, LiveRecord>();
  const sample = new Map<string, MetricsRecord>();
  for (const r of shards.flat()) {
    if (r.sk.endsWith(fleetKeys.nodeLiveSuffix)) live.set(r.nodeId, r as LiveRecord);
    else sample.set(r.nodeId, r as MetricsRecord);
  }
  return { live, sample };
}

/** Every node, by name: the node index and one query per shard for liveness and metrics together. */
export async function listNodes(ctx: AppContext): Promise<NodeItem[]> {
  const [metas, { live, sample }] = await Promise.all([
    queryAll<NodeItem>(ctx.store, fleetKeys.nodesPk, { index: 'gsi1' }),
    allState(ctx),
  ]);
  return metas.map((m) => assemble(m, live.get(m.nodeId), sample.get(m.nodeId)));
}

/** Most nodes one listing page returns (and its default: a small fleet comes back whole). */
export const NODE_PAGE_MAX = 1000;

/** The query of a paged node listing (GET /api/nodes/, GET /workers). */
export const nodePageQuery = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(NODE_PAGE_MAX)
    .default(NODE_PAGE_MAX)
    .describe('Nodes a page, by name (default 1,000: a small fleet in one page)'),
  cursor: z.string().min(1).max(4096).optional().describe("A page's `next_cursor`: the nodes after it"),
  name_prefix: z
    .string()
    .min(1)
    .max(253)
    .optional()
    .describe('Only nodes whose name begins with this (as registered: case counts), e.g. a picker’s search'),
};
/** The field a paged listing adds to its answer. */
export const nextCursorField = z.string().nullable().describe('For the next page; null on the last');

/**
 * Nodes by name, `limit` of them after `cursor`: a page of the node index (read on past DynamoDB's
 * 1 MB pages), then each listed node's liveness and metrics (one query each), so a request reads
 * what it returns, not the fleet's shards, unless the page is the whole fleet. `cursor` is absent
 * on the last page.
 */
export async function nodePage(
  ctx: AppContext,
  opts: { limit: number; cursor?: string | undefined; name_prefix?: string | undefined },
): Promise<{ nodes: NodeItem[]; cursor?: string }> {
  const after =
    opts.cursor === undefined
      ? undefined
      : decodeKeyCursor(opts.cursor, (name) => name.length > 0 && name.length <= 400);
  const prefix = opts.name_prefix;
  // Names sort by code unit: a prefix is the range from it to it followed by the highest one.
  const range: [string, string] | undefined =
    prefix !== undefined
      ? [after !== undefined && after > prefix ? after : prefix, `${prefix}\uffff`]
      : after !== undefined
        ? [after, '\uffff']
        : undefined;
  const page = await keyPage<NodeItem>(ctx, fleetKeys.nodesPk, {
    index: 'gsi1',
    ascending: true,
    limit: opts.limit,
    after,
    range,
  });
  // The whole fleet in one page (at most NODE_PAGE_MAX nodes): its shards cost fewer units than a query a node.
  const nodes =
    after === undefined && prefix === undefined && page.cursor === undefined
      ? await allState(ctx).then(({ live, sample }) =>
          page.items.map((m) => assemble(m, live.get(m.nodeId), sample.get(m.nodeId))),
        )
      : await Promise.all(page.items.map((m) => withState(ctx, m)));
  return { nodes, ...(page.cursor !== undefined ? { cursor: page.cursor } : {}) };
}

/** Cordoned (or draining): nothing new is placed on the node. */
export const isCordoned = (n: Pick<NodeItem, 'cordoned'>): boolean => n.cordoned === true;
/** Draining: what runs on the node is moved elsewhere. */
export const isDraining = (n: Pick<NodeItem, 'draining'>): boolean => n.draining === true;

/**
 * Whether the node can run a start: a process node (no container engine) runs only starts that
 * give a command, and never a model server (it forwards tasks to a container's published port).
 */
export function canRun(
  n: Pick<NodeItem, 'driver'>,
  start: { command?: readonly string[] | undefined },
): boolean {
  return n.driver !== 'process' || (start.command?.length ?? 0) > 0;
}

/** Online and not cordoned: may take new work. */
export const isSchedulable = (n: NodeItem, ctx: AppContext, now = ctx.now()): boolean =>
  !isCordoned(n) && isOnline(n, ctx, now);
