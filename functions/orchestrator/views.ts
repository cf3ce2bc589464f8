import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { getNode, getNodeRecord, isOnline, type NodeItem } from '../nodes/nodes.js';
import { imageInstanceCounts, totalOf } from './instance-counts.js';
import { imageInstancePage, instancePage } from './instance-pages.js';
import { getInstance, listServices, nodeInstances, type InstanceItem, type PortBinding } from './model.js';
import { BACKING_OFF, type InstanceStatus } from './plan.js';
import { resourcesView } from './resources.js';

/** What the Containers API shows of images and their copies. */

/** Docker's words for our states, since the documented clients test for `running`. */
const ENGINE_STATUS: Record<InstanceStatus, string> = {
  pending: 'created',
  running: 'running',
  stopping: 'running',
  stopped: 'exited',
  exited: 'exited',
  failed: 'dead',
  orphaned: 'unknown',
  removing: 'removing',
  removed: 'removed',
};
export const engineStatus = (s: InstanceStatus) => ENGINE_STATUS[s];

/** `{"80/tcp": "8080"}` */
export function portsView(ports: PortBinding[]): Record<string, string> {
  return Object.fromEntries(
    ports
      .filter((p) => p.hostPort)
      .map((p) => [`${p.containerPort}/${p.protocol || 'tcp'}`, String(p.hostPort)]),
  );
}

const resourcesOut = resourcesView;

/** A dead copy waiting out its restart backoff: why, how many failures in a row, when it is tried again. */
export function backoffView(i: InstanceItem) {
  return i.backoff && BACKING_OFF.has(i.status)
    ? {
        reason: i.backoff.reason,
        attempt: i.backoff.attempt,
        next_try_at: new Date(i.backoff.nextTryAt).toISOString(),
      }
    : undefined;
}

export function containerView(i: InstanceItem) {
  const backoff = backoffView(i);
  return {
    id: i.instanceId,
    name: i.name,
    image: i.imageId,
    status: backoff ? 'backoff' : engineStatus(i.status),
    ...(backoff ? { backoff } : {}),
    ports: portsView(i.ports),
    created_at: i.createdAt,
    resources: resourcesOut(i.resources),
    node_id: i.nodeId,
  };
}

export function endpointUrl(i: InstanceItem, node: NodeItem | undefined): string | null {
  const p = i.ports.find((b) => b.hostPort);
  if (!p || !node) return null;
  const host = node.addresses[0] ?? node.hostname;
  return `http://${host.includes(':') ? `[${host}]` : host}:${p.hostPort}`;
}

/**
 * A page of the fleet's containers (instance-pages.ts), oldest first within the page; with
 * `node_id`, every copy on that node (its own index: one page, whatever the fleet).
 */
export async function listContainers(
  ctx: AppContext,
  query: { limit: number; cursor?: string | undefined; node_id?: string | undefined },
) {
  const page = query.node_id
    ? await nodeInstances(ctx, query.node_id).then((instances) => ({
        instances,
        total: instances.length,
        cursor: undefined,
      }))
    : await instancePage(ctx, query);
  const instances = [...page.instances].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0,
  );
  return { containers: instances.map(containerView), total: page.total, next_cursor: page.cursor ?? null };
}

/**
 * A page of one image's copies (instance-pages.ts), each with its endpoint: the page and its
 * nodes' records are read, never every copy (a global service has one on each eligible node).
 */
export async function listImageInstances(
  ctx: AppContext,
  imageId: string,
  query: { limit: number; cursor?: string | undefined },
) {
  const page = await imageInstancePage(ctx, imageId, query);
  const ids = [...new Set(page.instances.map((i) => i.nodeId))];
  const nodes = new Map(
    await Promise.all(ids.map(async (id) => [id, await getNodeRecord(ctx, id)] as const)),
  );
  return {
    instances: page.instances.map((i) => ({
      id: i.instanceId,
      status: engineStatus(i.status),
      endpoint: endpointUrl(i, nodes.get(i.nodeId)),
      resources: resourcesOut(i.resources),
      node_id: i.nodeId,
    })),
    next_cursor: page.cursor ?? null,
  };
}

/**
 * Each image with its counts (instance-counts.ts: one small query an image, never its copies).
 * `current_running` counts copies running as last reported: one whose node went offline stops
 * counting once the reconcile that follows replaces or orphans it.
 */
export async function listImages(ctx: AppContext) {
  const services = await listServices(ctx);
  const counts = await Promise.all(services.map((s) => imageInstanceCounts(ctx, s.imageId)));
  return {
    images: services
      .map((s, n) => ({
        image: s.imageId,
        desired_count: s.desiredCount,
        current_running: counts[n]!.running,
        total_instances: totalOf(counts[n]!),
        resources: resourcesOut(s.resources),
        ...(s.rollout
          ? {
              rollout: {
                started_at: s.rollout.startedAt,
                updated: s.rollout.copies,
                finished_at: s.rollout.finishedAt ?? null,
              },
            }
          : {}),
      }))
      .sort((a, b) => (a.image < b.image ? -1 : 1)),
  };
}

/** Health thresholds of the documented HealthResponse. */
export function healthLevel(cpu: number, memory: number): 'healthy' | 'warning' | 'critical' {
  const worst = Math.max(cpu, memory);
  if (worst > 90) return 'critical';
  if (worst >= 75) return 'warning';
  return 'healthy';
}

const round = (n: number) => Math.round(n * 100) / 100;

export async function instanceHealth(ctx: AppContext, instanceId: string) {
  const inst = await getInstance(ctx, instanceId);
  if (!inst || inst.status === 'removed') throw new NotFoundError(`Instance ${instanceId} not found`);
  const node = await getNode(ctx, inst.nodeId);
  const sample = node?.containerStats?.[instanceId];
  const cpu = round(sample?.cpuPercent ?? 0);
  const memory = round(sample?.memoryPercent ?? 0);
  if (inst.status !== 'running') {
    const why =
      inst.status === 'exited'
        ? [
            `Container exited${inst.exitCode !== undefined && inst.exitCode !== null ? ` with code ${inst.exitCode}` : ''}${inst.lastError ? `: ${inst.lastError}` : ''}`,
          ]
        : inst.status === 'failed'
          ? [`Container failed to start${inst.lastError ? `: ${inst.lastError}` : ''}`]
          : null;
    return { cpu_usage: 0.0, memory_usage: 0.0, disk_usage: 0.0, status: 'stopped' as const, errors: why };
  }
  if (!node || !isOnline(node, ctx)) {
    return {
      cpu_usage: cpu,
      memory_usage: memory,
      disk_usage: 0.0,
      status: 'critical' as const,
      errors: [`Node ${inst.nodeId} is offline (last heartbeat ${node?.lastHeartbeat ?? 'never'})`],
    };
  }
  const status = healthLevel(cpu, memory);
  const errors: string[] = [];
  if (cpu >= 75) errors.push(`High CPU usage: ${cpu}%`);
  if (memory >= 75) errors.push(`High memory usage: ${memory}%`);
  return {
    cpu_usage: cpu,
    memory_usage: memory,
    disk_usage: 0.0,
    status,
    errors: errors.length ? errors : null,
  };
}
