import type { AppContext } from '../core/context.js';
import { listNodes, type NodeItem } from '../fleet/nodes.js';
import { nodeView } from '../fleet/node-routes.js';
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
}

/** MiB, not the REST view's percentage: the WebSocket example shows `"gpu_memory": 4096`. */
function gpuMemoryMiB(node: NodeItem): number {
  return (node.metrics?.gpus ?? []).reduce((sum, g) => sum + (g.memoryUsedMiB ?? 0), 0);
}

/** `/ws/metrics`: every node by name, with the numbers of `GET /api/nodes/`. */
export async function metricsMessage(ctx: AppContext): Promise<MetricsMessage> {
  const now = ctx.now();
  const nodes: Record<string, NodeMetricsEntry> = {};
  for (const node of await listNodes(ctx)) {
    const v = nodeView(node, ctx, now);
    nodes[node.nodeName] = {
      cpu: v.cpu,
      memory: v.memory,
      gpu: v.gpu,
      gpu_memory: gpuMemoryMiB(node),
      temperature: v.temperature,
      disk: v.disk,
      status: v.status as 'online' | 'offline',
    };
  }
  return { type: 'metrics', nodes, timestamp: new Date(now).toISOString() };
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
