import type { AppContext } from '../core/context.js';
import { listNodes, type NodeItem } from '../nodes/nodes.js';
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

export interface MetricsMessage {
  type: 'metrics';
  nodes: Record<string, NodeMetricsEntry>;
  timestamp: string;
  /** Present when the fleet takes more than one frame: this frame's place (1-based) and the count. */
  part?: number;
  parts?: number;
}

/** API Gateway's WebSocket message limit is 128 KB; a frame of /ws/metrics stays under this. */
export const MAX_FRAME_BYTES = 120 * 1024;

/** MiB, not the REST view's percentage: the WebSocket example shows `"gpu_memory": 4096`. */
function gpuMemoryMiB(node: NodeItem): number {
  return (node.metrics?.gpus ?? []).reduce((sum, g) => sum + (g.memoryUsedMiB ?? 0), 0);
}

/**
 * `/ws/metrics`: every node by name, with the numbers of `GET /api/nodes/`; one frame while the
 * fleet fits MAX_FRAME_BYTES (about 1,100 nodes), else consecutive frames of the same shape, each
 * with `part` and `parts`, that together name every node once.
 */
export async function metricsFrames(ctx: AppContext, maxBytes = MAX_FRAME_BYTES): Promise<MetricsMessage[]> {
  const now = ctx.now();
  const timestamp = new Date(now).toISOString();
  const frames: Record<string, NodeMetricsEntry>[] = [{}];
  // The envelope with the largest part numbers, and a comma per entry.
  const envelope = JSON.stringify({
    type: 'metrics',
    nodes: {},
    timestamp,
    part: 999_999,
    parts: 999_999,
  }).length;
  let size = envelope;
  for (const node of await listNodes(ctx)) {
    const v = nodeView(node, ctx, now);
    const entry: NodeMetricsEntry = {
      cpu: v.cpu,
      memory: v.memory,
      gpu: v.gpu,
      gpu_memory: gpuMemoryMiB(node),
      temperature: v.temperature,
      disk: v.disk,
      status: v.status as 'online' | 'offline',
    };
    const bytes = Buffer.byteLength(JSON.stringify({ [node.nodeName]: entry })) - 1;
    if (size + bytes > maxBytes && Object.keys(frames.at(-1)!).length) {
      frames.push({});
      size = envelope;
    }
    frames.at(-1)![node.nodeName] = entry;
    size += bytes;
  }
  if (frames.length === 1) return [{ type: 'metrics', nodes: frames[0]!, timestamp }];
  return frames.map((nodes, i) => ({ type: 'metrics', nodes, timestamp, part: i + 1, parts: frames.length }));
}

export interface NodeProblem {
  node_id: string;
  node: string;
  check: 'offline' | 'disk';
  level: 'warning' | 'error';
  message: string;
}

export interface DoctorMessage {
  type: 'doctor';
  /** `unhealthy`: a dependency failed; `degraded`: the control plane is fine but some nodes are not. */
  status: 'healthy' | 'degraded' | 'unhealthy';
  timestamp: string;
  /** The `GET /health` body. */
  health: HealthReport;
  problems: NodeProblem[];
}

/** `/ws/doctor`: the /health report plus what the node records alone tell (no calls to the nodes). */
export async function doctorMessage(ctx: AppContext): Promise<DoctorMessage> {
  const health = await checkHealth(ctx);
  const now = ctx.now();
  const problems: NodeProblem[] = [];
  const nodes = await listNodes(ctx).catch(() => [] as NodeItem[]);
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
