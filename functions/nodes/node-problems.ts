/**
 * A node's own problems (what maintenance lists of it: offline, disk, memory, GPU temperature,
 * model servers down) judged from its records, and the markers that name the nodes having any
 * (`NODEPROBLEMS#<shard>`/`<nodeId>`), so the problems listing reads the flagged nodes, not the
 * fleet. The heartbeat writes a node's marker when a stored sample changes its problems or it comes
 * back online, the sweep when it flips a node offline and for every node it reads whose marker
 * drifted (a lost write, nodes from before the markers); the listing drops a marker whose node is
 * fine or gone.
 */
import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import { ConditionFailedError, deleteIf, type StoreItem } from '../ports/store.js';
import { nodeShard } from './node-records.js';
import type { NodeItem } from './node-model.js';

export const THRESHOLDS = {
  diskWarningPercent: 80,
  diskCriticalPercent: 90,
  memoryPercent: 90,
  gpuTemperatureC: 85,
} as const;

export type ProblemType =
  'node_offline' | 'disk_space' | 'high_memory' | 'gpu_temperature' | 'container_exited';

export const percent = (used: number | null | undefined, total: number | null | undefined) =>
  used != null && total ? (used / total) * 100 : null;

/** GPU readings of the last heartbeat: nvidia-smi's per GPU, and tegrastats' GPU zone on a Jetson. */
export function gpuTemperatures(
  metrics: NodeItem['metrics'],
): { label: string; celsius: number; index?: number }[] {
  const out: { label: string; celsius: number; index?: number }[] = (metrics?.gpus ?? []).flatMap((g) =>
    g.temperatureC === null
      ? []
      : [{ label: `GPU ${g.index} (${g.name})`, celsius: g.temperatureC, index: g.index }],
  );
  const zones = (metrics?.tegrastats as { temperatures?: Record<string, unknown> } | null | undefined)
    ?.temperatures;
  for (const [zone, value] of Object.entries(zones ?? {})) {
    if (/^gpu\d*$/i.test(zone) && typeof value === 'number')
      out.push({ label: `tegrastats ${zone}`, celsius: value });
  }
  return out;
}

const STOPPED_ENGINE_STATES: ReadonlySet<string> = new Set(['exited', 'dead']);

/** What a node's records say of it: the sample's metrics and containers, META's disk and memory as fallbacks. */
export type ProblemFacts = Pick<NodeItem, 'metrics' | 'containerStats'> &
  Partial<Pick<NodeItem, 'diskGb' | 'memoryMb'>>;

export const diskPercent = (n: ProblemFacts) =>
  percent(n.metrics?.diskUsedGb, n.metrics?.diskTotalGb ?? n.diskGb);
export const memoryPercent = (n: ProblemFacts) =>
  percent(n.metrics?.memoryUsedMb, n.metrics?.memoryTotalMb ?? n.memoryMb);
export const hotGpus = (n: ProblemFacts) =>
  gpuTemperatures(n.metrics).filter((t) => t.celsius >= THRESHOLDS.gpuTemperatureC);
/** Model servers the last sample reports stopped. */
export const stoppedModels = (n: ProblemFacts) =>
  Object.entries(n.containerStats ?? {}).filter(
    ([, c]) => c.kind === 'model' && STOPPED_ENGINE_STATES.has(c.state),
  );

/**
 * The problems a node has of its own, sorted: `node_offline` alone when it is offline (nothing
 * else is judged from stale readings). Dead copies are the orchestrator's markers, not these.
 */
export function nodeProblemKinds(n: ProblemFacts, online: boolean): ProblemType[] {
  if (!online) return ['node_offline'];
  const out: ProblemType[] = [];
  const disk = diskPercent(n);
  if (disk !== null && disk >= THRESHOLDS.diskWarningPercent) out.push('disk_space');
  const memory = memoryPercent(n);
  if (memory !== null && memory >= THRESHOLDS.memoryPercent) out.push('high_memory');
  if (hotGpus(n).length) out.push('gpu_temperature');
  if (stoppedModels(n).length) out.push('container_exited');
  return out.sort();
}

export interface ProblemMarker extends StoreItem {
  nodeId: string;
  kinds: ProblemType[];
  /** When written (epoch ms): a reader deletes the marker it judged stale only if it is still this one. */
  at: number;
}

export const problemMarkerKey = (nodeId: string) => fleetKeys.nodeProblems(nodeId, nodeShard(nodeId));

export const sameKinds = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((k, i) => k === b[i]);

/**
 * Puts the node's marker with these kinds, or deletes it when there are none. `read`: only if the
 * marker is still the one read (none: still absent), so a judgement from older records never
 * overwrites a heartbeat's newer one; false when it changed meanwhile.
 */
export async function setProblemMarker(
  ctx: AppContext,
  nodeId: string,
  kinds: ProblemType[],
  read?: { marker: ProblemMarker | undefined },
): Promise<boolean> {
  const k = problemMarkerKey(nodeId);
  const condition = read && (read.marker ? { equals: { at: read.marker.at } } : { notExists: true });
  try {
    if (kinds.length) await ctx.store.put<ProblemMarker>({ ...k, nodeId, kinds, at: ctx.now() }, condition);
    else if (read?.marker) return await deleteIf(ctx.store, k.pk, k.sk, { equals: { at: read.marker.at } });
    else if (!read) await ctx.store.delete(k.pk, k.sk);
    return true;
  } catch (error) {
    if (error instanceof ConditionFailedError) return false;
    throw error;
  }
}

/** Drops a marker read as stale (its node fine or gone), unless it was written again meanwhile. */
export async function dropStaleMarker(ctx: AppContext, marker: ProblemMarker): Promise<void> {
  await deleteIf(ctx.store, marker.pk, marker.sk, { equals: { at: marker.at } });
}
