/**
 * How a node is stored: three records, so that what changes every heartbeat is small and on no index.
 * - META (`NODE#<id>`/`META`): what registration declares, the credential hash, labels; on gsi1
 *   `NODES` by name. Written at registration and label changes, never by a heartbeat.
 * - LIVE (`NODESTATE#<shard>`/`<id>#LIVE`): status and last heartbeat, with the metric history
 *   points of the current 5 minutes (metric-history.ts), under 500 bytes: one write unit a beat.
 * - METRICS (`NODESTATE#<shard>`/`<id>#METRICS`): the last stored sample (metrics, models,
 *   containers), rewritten only when it moved (see `metricsDue`).
 * The shard spreads what heartbeats write over NODE_SHARDS partition keys: at 100,000 nodes beating
 * every 30 s, 3,333 liveness writes a second plus at most as many metrics writes, under 1,000 per key.
 * One query per shard reads both record kinds of every node in it.
 */
import type { AppContext } from '../core/context.js';
import { fleetKeys, keys } from '../core/keys.js';
import { putIfAbsent, type StoreItem } from '../ports/store.js';
import type { NodeMetrics } from '../../protocol/messages.js';

export const NODE_SHARDS = 8;

/** FNV-1a of the node id: a stable shard for the life of the node. */
export function nodeShard(nodeId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) {
    h ^= nodeId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % NODE_SHARDS;
}

export const SHARDS = Array.from({ length: NODE_SHARDS }, (_, i) => i);

export const liveKey = (nodeId: string) => keys.nodeLive(nodeId, nodeShard(nodeId));
export const metricsKey = (nodeId: string) => keys.nodeMetrics(nodeId, nodeShard(nodeId));

export interface LiveRecord extends StoreItem {
  nodeId: string;
  status: 'online' | 'offline';
  lastHeartbeat: string;
  lastHeartbeatMs: number;
  /** The agent said it is stopping (POST /agent/stopping): offline to readers until it registers or beats again. */
  stoppedAtMs?: number;
  /** Task slots (the max-concurrency label) as of this beat: the sweep's fleet aggregate needs no META read. */
  slots?: number;
  /** A Jetson's memory (its GPU shares it), for the same aggregate. */
  unifiedMb?: number;
  /** The node's name (META's), so the live pushes read the shard alone; absent on older records. */
  name?: string;
  /** META's cluster and registration time (epoch ms), for the aggregate's clusters and first registration. */
  cluster?: string;
  since?: number;
  /** META's CPU cores, memory and disk, for the aggregate's host sums when a sample lacks them. */
  cores?: number;
  memoryMb?: number;
  diskGb?: number;
  /** Metric history points not yet written out (metric-history.ts). */
  history?: HistoryBuffer;
}

/**
 * The 1-minute history points of one 5-minute bucket, carried on the liveness record until the
 * bucket closes: `b` the bucket's start (epoch ms), `p` its points as [minute in the bucket, ...fields].
 */
export interface HistoryBuffer {
  b: number;
  p: (number | null)[][];
}

/** Node label that sets how many tasks a node runs at once (default 1: one generation per GPU). */
export const MAX_CONCURRENCY_LABEL = 'max-concurrency';

export function maxConcurrencyOf(node: { labels?: Record<string, string> }): number {
  const raw = node.labels?.[MAX_CONCURRENCY_LABEL];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 && n <= 64 ? n : 1;
}

/** The longest cluster name a liveness record carries (as an install's); a longer one counts under none. */
export const MAX_LIVE_CLUSTER = 128;

/** What a liveness record carries of META for the sweep's aggregate (a few bytes, still one write unit). */
export function liveFacts(node: {
  labels?: Record<string, string>;
  jetson?: unknown;
  memoryMb: number;
  nodeName?: string;
  cluster?: string | undefined;
  registeredAt?: string;
  cpuCount?: number;
  diskGb?: number;
}): Pick<LiveRecord, 'slots' | 'unifiedMb' | 'name' | 'cluster' | 'since' | 'cores' | 'memoryMb' | 'diskGb'> {
  const since = node.registeredAt ? Date.parse(node.registeredAt) : NaN;
  return {
    slots: maxConcurrencyOf(node),
    ...(node.cpuCount !== undefined ? { cores: node.cpuCount, memoryMb: node.memoryMb } : {}),
    ...(node.diskGb !== undefined ? { diskGb: node.diskGb } : {}),
    ...(node.jetson ? { unifiedMb: node.memoryMb } : {}),
    ...(node.nodeName ? { name: node.nodeName } : {}),
    // A longer name (registration does not bound it) would cost write units every beat.
    ...(node.cluster && node.cluster.length <= MAX_LIVE_CLUSTER ? { cluster: node.cluster } : {}),
    ...(Number.isFinite(since) ? { since } : {}),
  };
}

export interface MetricsSample {
  metrics?: NodeMetrics;
  loadedModels: string[];
  containerStats: Record<
    string,
    {
      state: string;
      kind: string;
      cpuPercent: number | null;
      memoryPercent: number | null;
      memoryUsageMb: number | null;
    }
  >;
}

export interface MetricsRecord extends StoreItem, MetricsSample {
  nodeId: string;
  storedAtMs: number;
  /** Its models are in the model residency index (absent on samples stored before it). */
  indexed?: boolean;
}

/** Below this a change is noise and never stored (percent of the larger value, at least of 100). */
const NOISE_PERCENT = 1;

/** The sample's numbers by path, and what must match exactly (models, container states, GPU ids). */
function flatten(sample: MetricsSample): { numbers: Map<string, number>; shape: string } {
  const numbers = new Map<string, number>();
  const shape: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'number') numbers.set(path, v);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v && typeof v === 'object')
      for (const k of Object.keys(v).sort()) walk((v as Record<string, unknown>)[k], `${path}.${k}`);
    else shape.push(`${path}=${String(v)}`);
  };
  walk(sample.metrics ?? null, 'm');
  walk(sample.containerStats, 'c');
  shape.push(`models=${[...sample.loadedModels].sort().join(',')}`);
  shape.push(`containers=${Object.keys(sample.containerStats).sort().join(',')}`);
  return { numbers, shape: shape.join('\n') };
}

/** The largest change between two samples in percent (of the larger value, at least of 100); Infinity when their shape differs. */
export function sampleChange(before: MetricsSample, after: MetricsSample): number {
  const a = flatten(before);
  const b = flatten(after);
  if (a.shape !== b.shape || a.numbers.size !== b.numbers.size) return Infinity;
  let most = 0;
  for (const [path, x] of a.numbers) {
    const y = b.numbers.get(path);
    if (y === undefined) return Infinity;
    most = Math.max(most, (Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y), 100)) * 100);
  }
  return most;
}

/**
 * Whether a heartbeat's sample is stored: at once when its containers or models changed or a number
 * moved past NODE_METRICS_THRESHOLD_PERCENT; after NODE_METRICS_INTERVAL_SECONDS when it moved past
 * noise; never when it is the stored one again.
 */
export function metricsDue(
  ctx: AppContext,
  stored: MetricsRecord | undefined,
  sample: MetricsSample,
  now: number,
): boolean {
  if (!stored) return true;
  const change = sampleChange(stored, sample);
  if (change > ctx.config.NODE_METRICS_THRESHOLD_PERCENT) return true;
  return change > NOISE_PERCENT && now - stored.storedAtMs >= ctx.config.NODE_METRICS_INTERVAL_SECONDS * 1000;
}

/**
 * The free-capacity index (`NODEFREE#<shard>`/`<nodeId>`, gsi1 `NODEFREEMODEL#<model>`): a hint of
 * the nodes that may take a task, so a placement reads a page of candidates instead of the fleet.
 * The fleet writes it where liveness and cordon change (register, back online, offline, cordon,
 * retire); the task queue where slots change. Placement checks every candidate it reads and drops
 * stale entries; the scheduled placement run rebuilds what drifted from the whole fleet.
 */
export interface FreeRecord extends StoreItem {
  nodeId: string;
  /** The model the node last served (what a release leaves resident), for model-affine lookups. */
  model?: string;
}

export const freeKey = (nodeId: string) => fleetKeys.nodeFree(nodeId, nodeShard(nodeId));

/**
 * Marks a node free. `keep`: only when it has no entry yet (an existing one keeps its model).
 */
export async function markFree(
  ctx: AppContext,
  nodeId: string,
  options: { model?: string; keep?: boolean } = {},
): Promise<void> {
  const item: FreeRecord = {
    ...freeKey(nodeId),
    nodeId,
    ...(options.model
      ? { model: options.model, ...fleetKeys.nodeFreeModelIndex(nodeId, options.model) }
      : {}),
  };
  // keep: an entry already there (a claim's own) stays as it is.
  await (options.keep ? putIfAbsent(ctx.store, item) : ctx.store.put(item));
}

export async function clearFree(ctx: AppContext, nodeId: string): Promise<void> {
  const k = freeKey(nodeId);
  await ctx.store.delete(k.pk, k.sk);
}

/**
 * The eligible-node index (`NODEUP#<shard>`/`<nodeId>`): online and not cordoned, so a container
 * start reads a page of candidates instead of the fleet. Written where liveness and cordon change,
 * beside the free-capacity index; the start checks each candidate it reads, and the sweep repairs
 * what drifted.
 */
export const upKey = (nodeId: string) => fleetKeys.nodeUp(nodeId, nodeShard(nodeId));

export async function markUp(ctx: AppContext, nodeId: string): Promise<void> {
  await ctx.store.put({ ...upKey(nodeId), nodeId });
}

export async function clearUp(ctx: AppContext, nodeId: string): Promise<void> {
  const k = upKey(nodeId);
  await ctx.store.delete(k.pk, k.sk);
}
