import { createHash } from 'node:crypto';
import type { AppContext } from '../../core/context.js';
import { fleetKeys, instanceKeys, maintenanceKeys } from '../../core/keys.js';
import { getInstance, type InstanceItem } from '../../orchestrator/model.js';
import { DEAD } from '../../orchestrator/instance-counts.js';
import { queryAll, type StoreItem, deleteIf, putIfAbsent } from '../../ports/store.js';
import { getNode, isOnline, type NodeItem } from '../../nodes/nodes.js';
import { SHARDS } from '../../nodes/node-records.js';
import {
  THRESHOLDS,
  diskPercent,
  dropStaleMarker,
  hotGpus,
  memoryPercent,
  nodeProblemKinds,
  stoppedModels,
  type ProblemMarker,
  type ProblemType,
} from '../../nodes/node-problems.js';

/**
 * Maintenance problems: computed on every read from the records of the nodes that may have any
 * (their problem markers, nodes/node-problems.ts, and their dead copies' markers); what is stored
 * is only when each was first seen, under a stable id (a hash of node and type), so repeated
 * detections never duplicate.
 */

// ---------------------------------------------------------------- detection (pure)

export type Severity = 'warning' | 'critical';
export const FIX_TYPES = ['docker_cleanup', 'restart_exited'] as const;
export type FixType = (typeof FIX_TYPES)[number];

export interface DetectedProblem {
  id: string;
  nodeId: string;
  nodeName: string;
  type: ProblemType;
  severity: Severity;
  message: string;
  /** The quick fix a run applies for it; none when a person must act. */
  fix?: FixType;
}

export const problemId = (nodeId: string, type: ProblemType) =>
  `prob-${createHash('sha256').update(`${nodeId}#${type}`).digest('hex').slice(0, 24)}`;

export const EXITED: ReadonlySet<string> = new Set(['exited', 'failed']);

/** `, backing off (crash_loop, attempt 3) until <iso>` for a copy waiting out its restart backoff. */
const backoffNote = (i: InstanceItem) =>
  i.backoff
    ? `, backing off (${i.backoff.reason}, attempt ${i.backoff.attempt}) until ${new Date(i.backoff.nextTryAt).toISOString()}`
    : '';

function listed(names: string[], max = 5): string {
  return names.length > max
    ? `${names.slice(0, max).join(', ')} and ${names.length - max} more`
    : names.join(', ');
}

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1 };
const TYPE_RANK: Record<ProblemType, number> = {
  node_offline: 0,
  disk_space: 1,
  high_memory: 2,
  gpu_temperature: 3,
  container_exited: 4,
};

/**
 * What is wrong now, from the records: a node whose heartbeats stopped (nothing else is judged
 * from its stale readings), disk and memory usage and GPU temperatures of its last heartbeat, and
 * managed containers that died: the orchestrator's copies exited or failed (`restart_exited`
 * replaces them), model servers the heartbeat reports stopped. Training runs end by exiting, so
 * their exits are not problems.
 */
export function detectProblems(
  nodes: NodeItem[],
  instances: InstanceItem[],
  online: (node: NodeItem) => boolean,
): DetectedProblem[] {
  const problems: DetectedProblem[] = [];
  for (const node of nodes) {
    const name = node.nodeName;
    const add = (type: ProblemType, severity: Severity, message: string, fix?: FixType) =>
      problems.push({
        id: problemId(node.nodeId, type),
        nodeId: node.nodeId,
        nodeName: name,
        type,
        severity,
        message,
        ...(fix ? { fix } : {}),
      });

    if (!online(node)) {
      add(
        'node_offline',
        'critical',
        `Node ${name} is offline: no heartbeat since ${node.lastHeartbeat ?? 'registration'}`,
      );
      continue;
    }
    const m = node.metrics;
    const disk = diskPercent(node);
    if (disk !== null && disk >= THRESHOLDS.diskWarningPercent) {
      add(
        'disk_space',
        disk >= THRESHOLDS.diskCriticalPercent ? 'critical' : 'warning',
        `Disk usage at ${Math.round(disk)}% on ${name} (${m!.diskUsedGb} of ${m!.diskTotalGb ?? node.diskGb} GB)`,
        'docker_cleanup',
      );
    }
    const memory = memoryPercent(node);
    if (memory !== null && memory >= THRESHOLDS.memoryPercent) {
      add('high_memory', 'warning', `Memory usage at ${Math.round(memory)}% on ${name}`);
    }
    const hot = hotGpus(node);
    if (hot.length) {
      const max = Math.max(...hot.map((t) => t.celsius));
      add(
        'gpu_temperature',
        'warning',
        `GPU temperature at ${Math.round(max)} °C on ${name}: ${listed(hot.map((t) => `${t.label} ${Math.round(t.celsius)} °C`))}`,
      );
    }
    const copies = instances.filter((i) => i.nodeId === node.nodeId && EXITED.has(i.status));
    const models = stoppedModels(node);
    if (copies.length || models.length) {
      const names = [
        ...copies.map(
          (i) =>
            `${i.name} (${i.imageId}, ${i.status === 'failed' ? 'failed to start' : `exited${i.exitCode != null ? ` with code ${i.exitCode}` : ''}`}${backoffNote(i)})`,
        ),
        ...models.map(([instanceId]) => `model server ${instanceId}`),
      ];
      const n = names.length;
      add(
        'container_exited',
        'warning',
        `${n} managed container${n === 1 ? '' : 's'} ${n === 1 ? 'is' : 'are'} down on ${name}: ${listed(names)}`,
        copies.length ? 'restart_exited' : undefined,
      );
    }
  }
  return problems.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0) ||
      TYPE_RANK[a.type] - TYPE_RANK[b.type],
  );
}

// ---------------------------------------------------------------- problems as stored

interface ProblemRecord extends StoreItem {
  problemId: string;
  nodeId: string;
  type: ProblemType;
  detectedAt: string;
}

export interface ProblemView {
  id: string;
  node_id: string;
  type: ProblemType;
  severity: Severity;
  message: string;
  detected_at: string;
  auto_fixable: boolean;
}

/**
 * The copies dead now (exited or failed), from their markers (orchestrator/instance-counts.ts):
 * what they cost follows the dead copies, not the fleet's. A marker whose copy is gone or no
 * longer dead (its write was lost) is deleted.
 */
async function deadCopies(ctx: AppContext): Promise<InstanceItem[]> {
  const markers = (
    await Promise.all(
      SHARDS.map((s) =>
        queryAll<StoreItem & { instanceId: string }>(ctx.store, instanceKeys.deadCopiesPk(s)),
      ),
    )
  ).flat();
  const found = await Promise.all(markers.map((m) => getInstance(ctx, m.instanceId)));
  const dead: InstanceItem[] = [];
  for (const [n, inst] of found.entries()) {
    if (inst && DEAD.has(inst.status)) dead.push(inst);
    else await deleteIf(ctx.store, markers[n]!.pk, markers[n]!.sk);
  }
  return dead;
}

/**
 * The nodes that may have problems: those the problem markers name (a marker whose node is gone,
 * or fine now, is dropped) and those of the dead copies, each read once. What they cost follows
 * the problems, not the fleet.
 */
async function flaggedNodes(ctx: AppContext, dead: InstanceItem[]): Promise<NodeItem[]> {
  const markers = (
    await Promise.all(SHARDS.map((s) => queryAll<ProblemMarker>(ctx.store, fleetKeys.nodeProblemsPk(s))))
  ).flat();
  const ids = [...new Set([...markers.map((m) => m.nodeId), ...dead.map((i) => i.nodeId)])];
  const read = await Promise.all(ids.map((id) => getNode(ctx, id)));
  const byId = new Map(read.flatMap((n) => (n ? [[n.nodeId, n] as const] : [])));
  const now = ctx.now();
  for (const m of markers) {
    const node = byId.get(m.nodeId);
    if (!node || !nodeProblemKinds(node, isOnline(node, ctx, now)).length) await dropStaleMarker(ctx, m);
  }
  return [...byId.values()];
}

/**
 * Detects, then makes the stored records match: a new problem is recorded with the time it was
 * first seen (a concurrent reader's record wins), a problem gone is forgotten (if it comes back,
 * it is new again). Nothing is written when nothing changed.
 */
export async function currentProblems(
  ctx: AppContext,
): Promise<{ nodes: NodeItem[]; problems: (DetectedProblem & { detectedAt: string })[] }> {
  const [instances, stored] = await Promise.all([
    deadCopies(ctx),
    queryAll<ProblemRecord>(ctx.store, maintenanceKeys.pk, { prefix: maintenanceKeys.problemPrefix }),
  ]);
  const nodes = await flaggedNodes(ctx, instances);
  const now = ctx.now();
  const detected = detectProblems(nodes, instances, (n) => isOnline(n, ctx, now));
  const known = new Map(stored.map((r) => [r.problemId, r]));
  const problems = [];
  for (const p of detected) {
    let record = known.get(p.id);
    if (!record) {
      record = {
        ...maintenanceKeys.problem(p.id),
        problemId: p.id,
        nodeId: p.nodeId,
        type: p.type,
        detectedAt: new Date(now).toISOString(),
      };
      if (!(await putIfAbsent(ctx.store, record)))
        record = (await ctx.store.get<ProblemRecord>(record.pk, record.sk)) ?? record;
    }
    problems.push({ ...p, detectedAt: record.detectedAt });
  }
  const open = new Set(detected.map((p) => p.id));
  for (const r of stored) {
    if (open.has(r.problemId)) continue;
    await deleteIf(ctx.store, r.pk, r.sk, { equals: { detectedAt: r.detectedAt } });
  }
  return { nodes, problems };
}

export function problemView(p: DetectedProblem & { detectedAt: string }): ProblemView {
  return {
    id: p.id,
    node_id: p.nodeId,
    type: p.type,
    severity: p.severity,
    message: p.message,
    detected_at: p.detectedAt,
    auto_fixable: p.fix !== undefined,
  };
}
