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

/**
 * A sweep invocation's share of the fleet sample: what the online nodes of the records it read
 * report. The scheduled placement run sums the latest of each shard (`fleetAggregate`) instead of
 * reading every node.
 */
export interface FleetPart {
  onlineNodes: number;
  /** Every node whose liveness record it read, online or not (the gauges' offline count); absent on older parts. */
  nodes?: number;
  slots: number;
  /** Sum and count of the per-node mean GPU utilisation. */
  utilSum: number;
  utilCount: number;
  memUsedMb: number;
  memTotalMb: number;
  /** Nodes with each model resident. */
  resident: Record<string, number>;
  /** Every node read, online or not: nodes in each cluster, and the earliest registration (ms). Absent on older parts. */
  clusters?: Record<string, number>;
  since?: number;
  /** The online nodes' hosts summed; absent on older parts. */
  host?: HostPart;
  /**
   * By shard, the sort-key prefixes (`<nodeId>#`) where each run of about METRICS_PAGE_RECORDS (config)
   * node-state records begins: the page boundaries of `GET /metrics?shard=&page=`. Absent on older parts.
   */
  starts?: Record<string, string[]>;
}

/** The online nodes' CPU, memory, disk and running containers, summed (GET /system/resources). */
export interface HostPart {
  cores: number;
  /** Each node's CPU percent times its cores, summed. */
  cpuWeighted: number;
  memTotalMb: number;
  memUsedMb: number;
  diskTotalGb: number;
  diskUsedGb: number;
  containersRunning: number;
  containerCpu: number;
  containerMemMb: number;
  /** Samples stored: a node's metrics and each of its containers' stats. */
  samples: number;
}

export const emptyHost = (): HostPart => ({
  cores: 0,
  cpuWeighted: 0,
  memTotalMb: 0,
  memUsedMb: 0,
  diskTotalGb: 0,
  diskUsedGb: 0,
  containersRunning: 0,
  containerCpu: 0,
  containerMemMb: 0,
  samples: 0,
});

/** Adds one node's host to `host`: the sample's figures, else what registration declared. */
export function addHost(
  host: HostPart,
  node: { cores: number; memoryMb: number; diskGb: number },
  sample: Pick<MetricsSample, 'metrics' | 'containerStats'> | undefined,
): void {
  const m = sample?.metrics;
  host.cores += node.cores;
  host.cpuWeighted += node.cores * (m?.cpuPercent ?? 0);
  const memTotal = m?.memoryTotalMb ?? node.memoryMb;
  host.memTotalMb += memTotal;
  host.memUsedMb += Math.min(m?.memoryUsedMb ?? 0, memTotal);
  const diskTotal = m?.diskTotalGb ?? node.diskGb;
  host.diskTotalGb += diskTotal;
  host.diskUsedGb += Math.min(m?.diskUsedGb ?? 0, diskTotal);
  const containers = Object.values(sample?.containerStats ?? {});
  host.samples += (m ? 1 : 0) + containers.length;
  for (const c of containers) {
    if (c.state !== 'running') continue;
    host.containersRunning += 1;
    host.containerCpu += c.cpuPercent ?? 0;
    host.containerMemMb += c.memoryUsageMb ?? 0;
  }
}

export const emptyPart = (): FleetPart => ({
  onlineNodes: 0,
  nodes: 0,
  slots: 0,
  utilSum: 0,
  utilCount: 0,
  memUsedMb: 0,
  memTotalMb: 0,
  resident: {},
  host: emptyHost(),
});

/** Adds one online node (its liveness and its last stored sample) to a part. */
export function addToPart(part: FleetPart, live: LiveRecord, sample: MetricsRecord | undefined): void {
  part.onlineNodes++;
  part.slots += live.slots ?? 1;
  const gpus = sample?.metrics?.gpus ?? [];
  const utils = gpus.map((g) => g.utilizationGpu).filter((u): u is number => typeof u === 'number');
  if (utils.length) {
    part.utilSum += utils.reduce((a, b) => a + b, 0) / utils.length;
    part.utilCount++;
  }
  const totals = gpus.map((g) => g.memoryTotalMiB).filter((t): t is number => typeof t === 'number');
  const used = gpus.map((g) => g.memoryUsedMiB).filter((u): u is number => typeof u === 'number');
  const total = totals.length ? totals.reduce((a, b) => a + b, 0) : live.unifiedMb;
  const inUse = used.length
    ? used.reduce((a, b) => a + b, 0)
    : live.unifiedMb !== undefined
      ? (sample?.metrics?.memoryUsedMb ?? undefined)
      : undefined;
  if (total !== undefined && total > 0 && inUse !== undefined && inUse !== null) {
    part.memUsedMb += inUse;
    part.memTotalMb += total;
  }
  for (const m of sample?.loadedModels ?? []) part.resident[m] = (part.resident[m] ?? 0) + 1;
  // A liveness record from before the host facts: no host sums this sweep (readers read the nodes).
  if (live.cores === undefined) delete part.host;
  else if (part.host)
    addHost(part.host, { cores: live.cores, memoryMb: live.memoryMb ?? 0, diskGb: live.diskGb ?? 0 }, sample);
}

/** Adds one node, online or not, to a part's node count, clusters and earliest registration. */
export function countInPart(part: FleetPart, live: LiveRecord): void {
  part.nodes = (part.nodes ?? 0) + 1;
  if (live.cluster) (part.clusters ??= {})[live.cluster] = (part.clusters[live.cluster] ?? 0) + 1;
  if (live.since !== undefined) part.since = Math.min(part.since ?? live.since, live.since);
}

export function sumParts(parts: FleetPart[]): FleetPart {
  const out = emptyPart();
  for (const p of parts) {
    out.onlineNodes += p.onlineNodes;
    out.nodes = (out.nodes ?? 0) + (p.nodes ?? p.onlineNodes);
    out.slots += p.slots;
    out.utilSum += p.utilSum;
    out.utilCount += p.utilCount;
    out.memUsedMb += p.memUsedMb;
    out.memTotalMb += p.memTotalMb;
    for (const [m, n] of Object.entries(p.resident)) out.resident[m] = (out.resident[m] ?? 0) + n;
    for (const [c, n] of Object.entries(p.clusters ?? {}))
      (out.clusters ??= {})[c] = (out.clusters[c] ?? 0) + n;
    if (p.since !== undefined) out.since = Math.min(out.since ?? p.since, p.since);
    // Host sums only when every part has them (a part from before them would count short).
    if (!p.host) delete out.host;
    else if (out.host) for (const k of Object.keys(out.host) as (keyof HostPart)[]) out.host[k] += p.host[k];
    for (const [shard, list] of Object.entries(p.starts ?? {}))
      (out.starts ??= {})[shard] = [...(out.starts[shard] ?? []), ...list];
  }
  for (const [shard, list] of Object.entries(out.starts ?? {}))
    out.starts![shard] = [...new Set(list)].sort();
  return out;
}

interface FleetPartItem extends StoreItem, FleetPart {
  /** The shard it covers; -1: every shard (a sweep that fitted one invocation). */
  shard: number;
  /** When the sweep these parts belong to began (one per sweep, passed along its chain). */
  sweep: number;
  atMs: number;
  /** Its place in the shard's chain, and whether the chain ended with it (absent on older parts). */
  link?: number;
  done?: boolean;
}

/**
 * One record per shard and link of the sweep's chain, overwritten by the next sweep; `shard` -1:
 * one record for the whole fleet (a sweep that fitted one invocation: one write a minute).
 */
export async function storePart(
  ctx: AppContext,
  shard: number,
  link: number,
  sweep: number,
  part: FleetPart,
  /** The shard's chain ends with this link. */
  done = true,
): Promise<void> {
  await ctx.store.put<FleetPartItem>({
    ...(shard < 0 ? fleetKeys.fleetAggAll : fleetKeys.fleetAgg(shard, link)),
    ...part,
    shard,
    sweep,
    atMs: ctx.now(),
    link,
    done,
  });
}

/**
 * A shard's parts: one record per link, each from the sweep that last wrote it. While a sweep's
 * chain is part way, its first links are new and the rest still the last finished sweep's (the
 * same key ranges): both count, so the shard is never counted short. Links past the end of the
 * last finished chain (a fleet that shrank) do not. Parts from before `done` was written: the
 * latest sweep's alone.
 */
function shardParts(items: FleetPartItem[]): FleetPartItem[] {
  const ends = items.filter((i) => i.done === true);
  if (!ends.length) {
    const newest = Math.max(...items.map((i) => i.sweep));
    return items.filter((i) => i.sweep === newest);
  }
  // Every link up to the last finished chain's end holds that chain's part or a later sweep's.
  const end = Math.max(...ends.map((i) => i.sweep));
  return items.filter((i) => i.sweep >= end);
}

/** How old the sweep's aggregate may be for a reader (the sweep runs every minute). */
export const AGGREGATE_MAX_AGE_MS = 3 * 60_000;

/**
 * The fleet as the latest sweep of each shard saw it (parts younger than `maxAgeMs`); undefined
 * when no sweep has run yet. Reads one partition of one record per shard and sweep invocation.
 */
export async function fleetAggregate(ctx: AppContext, maxAgeMs: number): Promise<FleetPart | undefined> {
  const { items } = await ctx.store.query<FleetPartItem>(fleetKeys.fleetAggPk);
  const now = ctx.now();
  const fresh = items.filter((i) => now - i.atMs <= maxAgeMs);
  if (!fresh.length) return undefined;
  const latest = new Map<number, number>();
  for (const i of fresh) latest.set(i.shard, Math.max(latest.get(i.shard) ?? 0, i.sweep));
  // The whole-fleet record when it is the newest; else each shard's latest chain.
  const whole = latest.get(-1);
  if (whole !== undefined && [...latest.values()].every((s) => s <= whole))
    return sumParts(fresh.filter((i) => i.shard === -1 && i.sweep === whole));
  const byShard = new Map<number, FleetPartItem[]>();
  for (const i of fresh) if (i.shard >= 0) byShard.set(i.shard, [...(byShard.get(i.shard) ?? []), i]);
  return sumParts([...byShard.values()].flatMap(shardParts));
}
