import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import { assemble, getNodeRecord, type NodeItem } from '../nodes/nodes.js';
import { SHARDS, metricsKey, type LiveRecord, type MetricsRecord } from '../nodes/node-records.js';
import { nodeView } from '../nodes/routes.js';
import { checkHealth, type HealthReport } from '../system/health.js';

/** Disk use at or past this is a doctor problem. */
export const DISK_PROBLEM_PERCENT = 90;

export interface NodeMetricsEntry {
  cpu: number;
  memory: number;
  gpu: number;
  /** GPU memory in use, MiB, summed over the node's GPUs (the WebSocket document's `4096`). */
  gpu_memory: number;
  temperature: number | null;
  disk: number;
  status: 'online' | 'offline';
}

/**
 * Where a frame of a push that took several invocations comes from: the node-state shard, the
 * link of that shard's chain, and whether it is the chain's last frame (README, "/ws/metrics").
 */
export interface FrameTag {
  shard: number;
  link: number;
  last: boolean;
}

export interface MetricsMessage extends Partial<FrameTag> {
  type: 'metrics';
  nodes: Record<string, NodeMetricsEntry>;
  timestamp: string;
  /** Present when the fleet (or, tagged, one invocation's share of it) takes more than one frame: this frame's place (1-based) and the count. */
  part?: number;
  parts?: number;
}

/** API Gateway's WebSocket message limit is 128 KB; a frame of /ws/metrics stays under this. */
export const MAX_FRAME_BYTES = 120 * 1024;

/** MiB, not the REST view's percentage: the WebSocket example shows `"gpu_memory": 4096`. */
function gpuMemoryMiB(node: NodeItem): number {
  return (node.metrics?.gpus ?? []).reduce((sum, g) => sum + (g.memoryUsedMiB ?? 0), 0);
}

/** A node's `/ws/metrics` entry, with the numbers of `GET /api/nodes/`. */
export function metricsEntry(node: NodeItem, ctx: AppContext, now: number): NodeMetricsEntry {
  const v = nodeView(node, ctx, now);
  return {
    cpu: v.cpu,
    memory: v.memory,
    gpu: v.gpu,
    gpu_memory: gpuMemoryMiB(node),
    temperature: v.temperature,
    disk: v.disk,
    status: v.status as 'online' | 'offline',
  };
}

/** Records of node state one page reads. */
const PAGE_ITEMS = 1_000;

/**
 * A node as the live pushes need it, from its liveness and metrics records alone: the name rides
 * on the liveness record; the declared sizes (fallbacks when a sample lacks totals) do not.
 */
function fromState(live: LiveRecord & { name: string }, sample: MetricsRecord | undefined): NodeItem {
  const meta: NodeItem = {
    pk: '',
    sk: '',
    nodeId: live.nodeId,
    nodeName: live.name,
    hostname: '',
    addresses: [],
    arch: '',
    os: '',
    cpuCount: 0,
    memoryMb: live.unifiedMb ?? 0,
    diskGb: 0,
    gpus: [],
    labels: {},
    agentVersion: '',
    tokenHash: '',
    registeredAt: '',
    status: 'offline',
    loadedModels: [],
    containerStats: {},
  };
  return assemble(meta, live, sample);
}

/**
 * Up to `budget` node-state records of one shard from `cursor`, as nodes (liveness and metrics
 * together). A node whose metrics record falls past the budget is completed with one read; the
 * next link skips that record. Liveness records from before names rode on them read META.
 */
export async function readNodeState(
  ctx: AppContext,
  shard: number,
  cursor: string | undefined,
  budget: number,
): Promise<{ nodes: NodeItem[]; read: number; cursor?: string }> {
  const lives = new Map<string, LiveRecord>();
  const samples = new Map<string, MetricsRecord>();
  let read = 0;
  let next = cursor;
  do {
    const page = await ctx.store.query<LiveRecord | MetricsRecord>(fleetKeys.nodeStatePk(shard), {
      limit: Math.max(1, Math.min(PAGE_ITEMS, budget - read)),
      ...(next ? { cursor: next } : {}),
    });
    read += page.items.length;
    next = page.cursor;
    for (const r of page.items) {
      if (r.sk.endsWith(fleetKeys.nodeLiveSuffix)) lives.set(r.nodeId, r as LiveRecord);
      // A metrics record whose liveness the last link read: that link read it too.
      else if (lives.has(r.nodeId)) samples.set(r.nodeId, r as MetricsRecord);
    }
  } while (next && read < budget);
  const lastLive = [...lives.keys()].at(-1);
  if (next && lastLive !== undefined && !samples.has(lastLive)) {
    const k = metricsKey(lastLive);
    const sample = await ctx.store.get<MetricsRecord>(k.pk, k.sk);
    read++;
    if (sample) samples.set(lastLive, sample);
  }
  const nodes: NodeItem[] = [];
  for (const live of lives.values()) {
    const sample = samples.get(live.nodeId);
    if (live.name !== undefined) nodes.push(fromState({ ...live, name: live.name }, sample));
    else {
      const meta = await getNodeRecord(ctx, live.nodeId);
      read++;
      if (meta) nodes.push(assemble(meta, live, sample));
    }
  }
  return { nodes, read, ...(next ? { cursor: next } : {}) };
}

/** Every node from the node-state shards (tests and small fleets; the pushes read in bounded links). */
async function readAll(ctx: AppContext): Promise<NodeItem[]> {
  const out: NodeItem[] = [];
  for (const shard of SHARDS) {
    let cursor: string | undefined;
    do {
      const seg = await readNodeState(ctx, shard, cursor, 10_000);
      out.push(...seg.nodes);
      cursor = seg.cursor;
    } while (cursor);
  }
  return out.sort((a, b) => (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0));
}

/**
 * Metrics frames of `nodes`, each under `maxBytes`. Untagged: one frame without part fields when
 * they fit, else consecutive frames with `part` and `parts`. Tagged (one invocation's share of a
 * push that took several): every frame carries the tag and its `part` of `parts` among that share.
 */
export function packMetrics(
  ctx: AppContext,
  nodes: NodeItem[],
  timestamp: string,
  maxBytes = MAX_FRAME_BYTES,
  tag?: FrameTag,
): MetricsMessage[] {
  const now = ctx.now();
  const frames: Record<string, NodeMetricsEntry>[] = [{}];
  // The envelope with the largest part numbers and tag, and a comma per entry.
  const envelope = JSON.stringify({
    type: 'metrics',
    nodes: {},
    timestamp,
    part: 999_999,
    parts: 999_999,
    shard: 999,
    link: 999_999,
    last: false,
  }).length;
  let size = envelope;
  for (const node of nodes) {
    const entry = metricsEntry(node, ctx, now);
    const bytes = Buffer.byteLength(JSON.stringify({ [node.nodeName]: entry })) - 1;
    if (size + bytes > maxBytes && Object.keys(frames.at(-1)!).length) {
      frames.push({});
      size = envelope;
    }
    frames.at(-1)![node.nodeName] = entry;
    size += bytes;
  }
  if (!tag && frames.length === 1) return [{ type: 'metrics', nodes: frames[0]!, timestamp }];
  return frames.map((n, i) => ({
    type: 'metrics',
    nodes: n,
    timestamp,
    part: i + 1,
    parts: frames.length,
    ...(tag ? { ...tag, last: tag.last && i === frames.length - 1 } : {}),
  }));
}

/**
 * `/ws/metrics`: every node by name, with the numbers of `GET /api/nodes/`; one frame while the
 * fleet fits MAX_FRAME_BYTES (about 1,100 nodes), else consecutive frames of the same shape, each
 * with `part` and `parts`, that together name every node once. Reads the whole fleet: the
 * periodic push reads it in bounded links instead (push.ts).
 */
export async function metricsFrames(ctx: AppContext, maxBytes = MAX_FRAME_BYTES): Promise<MetricsMessage[]> {
  return packMetrics(ctx, await readAll(ctx), new Date(ctx.now()).toISOString(), maxBytes);
}

export interface NodeProblem {
  node_id: string;
  node: string;
  check: 'offline' | 'disk';
  level: 'warning' | 'error';
  message: string;
}

export interface DoctorMessage extends Partial<FrameTag> {
  type: 'doctor';
  /** `unhealthy`: a dependency failed; `degraded`: the control plane is fine but some nodes are not. */
  status: 'healthy' | 'degraded' | 'unhealthy';
  timestamp: string;
  /** The `GET /health` body. */
  health: HealthReport;
  problems: NodeProblem[];
  part?: number;
  parts?: number;
}

/** What the node records alone tell of these nodes (no calls to the nodes). */
export function nodeProblems(ctx: AppContext, nodes: NodeItem[], now = ctx.now()): NodeProblem[] {
  const problems: NodeProblem[] = [];
  for (const node of nodes) {
    const v = nodeView(node, ctx, now);
    const who = { node_id: node.nodeId, node: node.nodeName };
    if (v.status === 'offline') {
      problems.push({
        ...who,
        check: 'offline',
        level: 'error',
        message: `Node ${node.nodeName} is offline (last heartbeat ${node.lastHeartbeat ?? 'never'})`,
      });
    }
    if (v.disk >= DISK_PROBLEM_PERCENT) {
      problems.push({
        ...who,
        check: 'disk',
        level: 'warning',
        message: `Disk ${v.disk}% full on ${node.nodeName}`,
      });
    }
  }
  return problems;
}

/**
 * Doctor frames: one while the problems fit `maxBytes`, else consecutive frames with `part` and
 * `parts`, the problems split between them; tagged as metrics frames are.
 */
export function packDoctor(
  head: Pick<DoctorMessage, 'status' | 'timestamp' | 'health'>,
  problems: NodeProblem[],
  maxBytes = MAX_FRAME_BYTES,
  tag?: FrameTag,
): DoctorMessage[] {
  const envelope = JSON.stringify({
    type: 'doctor',
    ...head,
    problems: [],
    part: 999_999,
    parts: 999_999,
    shard: 999,
    link: 999_999,
    last: false,
  }).length;
  const frames: NodeProblem[][] = [[]];
  let size = envelope;
  for (const p of problems) {
    const bytes = Buffer.byteLength(JSON.stringify(p)) + 1;
    if (size + bytes > maxBytes && frames.at(-1)!.length) {
      frames.push([]);
      size = envelope;
    }
    frames.at(-1)!.push(p);
    size += bytes;
  }
  if (!tag && frames.length === 1) return [{ type: 'doctor', ...head, problems: frames[0]! }];
  return frames.map((list, i) => ({
    type: 'doctor',
    ...head,
    problems: list,
    part: i + 1,
    parts: frames.length,
    ...(tag ? { ...tag, last: tag.last && i === frames.length - 1 } : {}),
  }));
}

/** `/ws/doctor`: the /health report plus what the node records alone tell. Reads the whole fleet (see metricsFrames). */
export async function doctorMessage(ctx: AppContext): Promise<DoctorMessage> {
  const health = await checkHealth(ctx);
  const now = ctx.now();
  const problems = nodeProblems(ctx, await readAll(ctx).catch(() => [] as NodeItem[]), now);
  const status = health.status === 'unhealthy' ? 'unhealthy' : problems.length ? 'degraded' : 'healthy';
  return { type: 'doctor', status, timestamp: new Date(now).toISOString(), health, problems };
}

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

export interface LogMessage {
  type: 'log';
  node_id: string;
  node_name: string;
  timestamp: string;
  level: LogLevel;
  message: string;
}
