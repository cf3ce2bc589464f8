/** The sweep's fleet aggregate: what each sweep invocation read of the fleet, stored per shard and summed by readers. */
import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import type { StoreItem } from '../ports/store.js';
import type { LiveRecord, MetricsRecord, MetricsSample } from './node-records.js';

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
