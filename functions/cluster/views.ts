import { isCordoned } from '../nodes/nodes.js';
import type { ModelSpec } from './catalogue.js';
import { formatDuration, formatMemory, round1 } from './format.js';
import type { WorkerStats } from './metrics.js';
import { outputUrl } from './outputs.js';
import type { TaskItem, TaskStatus } from './tasks.js';
import { priorityLabel } from './validation.js';
import type { Worker } from './workers.js';

/** Response bodies in the shapes the two documents give. Pure. */

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function durationS(t: TaskItem): number | undefined {
  return t.startedAtMs !== undefined && t.completedAtMs !== undefined
    ? (t.completedAtMs - t.startedAtMs) / 1000
    : undefined;
}

/** Cluster statuses are ours as stored; vision calls assigned and running `processing`. */
export type VisionStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
export const visionStatus = (s: TaskStatus): VisionStatus =>
  s === 'assigned' || s === 'running' ? 'processing' : s;
export const fromVisionStatus = (s: VisionStatus): TaskStatus[] =>
  s === 'processing' ? ['assigned', 'running'] : [s];

export function clusterTaskView(t: TaskItem) {
  return {
    task_id: t.taskId,
    status: t.status,
    task_type: t.taskType,
    model_name: t.model,
    priority: priorityLabel(t.priority),
    assigned_worker: t.nodeId ?? null,
    created_at: t.createdAt,
    started_at: t.startedAt ?? null,
    completed_at: t.completedAt ?? null,
    duration: formatDuration(durationS(t)),
    progress: t.progress,
    result: t.result ?? null,
    error: t.error ?? null,
    attempts: t.attempts,
  };
}

export function taskListItem(t: TaskItem) {
  return {
    task_id: t.taskId,
    status: t.status,
    task_type: t.taskType,
    model_name: t.model,
    assigned_worker: t.nodeId ?? null,
    duration: formatDuration(durationS(t)),
    created_at: t.createdAt,
  };
}

/** GET /api/vision/jobs/{job_id}: the document's shape per status, plus what identifies the job. */
export function visionJobView(t: TaskItem, nodeName: (id: string) => string, queuePosition?: number) {
  const status = visionStatus(t.status);
  const base = { job_id: t.taskId, status, model: t.model, created_at: t.createdAt };
  switch (status) {
    case 'queued':
      return { ...base, queue_position: queuePosition ?? null };
    case 'processing':
      return { ...base, progress: t.progress, node_id: t.nodeId ? nodeName(t.nodeId) : null };
    case 'completed': {
      const seed =
        typeof t.result?.seed === 'number'
          ? t.result.seed
          : typeof t.parameters.seed === 'number'
            ? t.parameters.seed
            : null;
      const reported = typeof t.result?.generation_time === 'number' ? t.result.generation_time : undefined;
      return {
        ...base,
        progress: 100,
        result: {
          image_url: t.outputs?.[0] ? outputUrl(t.outputs[0]) : null,
          images: (t.outputs ?? []).map(outputUrl),
          seed,
          generation_time: reported ?? (durationS(t) === undefined ? null : round1(durationS(t)!)),
          node_id: t.nodeId ? nodeName(t.nodeId) : null,
        },
      };
    }
    case 'failed':
      return { ...base, error: t.error ?? 'failed' };
    case 'cancelled':
      return { ...base, error: t.error ?? 'cancelled' };
  }
}

export function workerStatus(w: Worker): 'online' | 'offline' | 'busy' | 'error' {
  if (!w.online) return 'offline';
  // Model servers run until told otherwise: one that exited has crashed.
  const crashed = Object.values(w.node.containerStats ?? {}).some(
    (c) => c.kind === 'model' && (c.state === 'exited' || c.state === 'dead'),
  );
  if (crashed) return 'error';
  if (w.maxConcurrency > 0 && w.running.length >= w.maxConcurrency) return 'busy';
  return 'online';
}

function gpuInfo(w: Worker) {
  return {
    model: w.gpuType ?? null,
    memory_total: formatMemory(w.gpuMemoryTotalMb),
    memory_used: formatMemory(w.gpuMemoryUsedMb),
    temperature: w.temperature ?? null,
    utilization: w.gpuUtilization === undefined ? null : round1(w.gpuUtilization),
  };
}

export function workerListItem(w: Worker, stats: WorkerStats) {
  return {
    worker_id: w.id,
    name: w.name,
    status: workerStatus(w),
    gpu_info: gpuInfo(w),
    loaded_models: w.resident,
    current_tasks: w.running.length,
    max_concurrency: w.maxConcurrency,
    cordoned: isCordoned(w.node),
    last_heartbeat: w.node.lastHeartbeat ?? null,
    performance_score: stats.performanceScore,
  };
}

export function workerDetail(w: Worker, stats: WorkerStats, catalogue: ModelSpec[]) {
  const node = w.node;
  return {
    worker_id: w.id,
    name: w.name,
    status: workerStatus(w),
    cordoned: isCordoned(node),
    gpu_info: { ...gpuInfo(w), driver_version: w.driverVersion ?? null },
    system_info: {
      cpu: node.cpuModel ?? `${node.cpuCount} cores`,
      ram_total: formatMemory(node.metrics?.memoryTotalMb ?? node.memoryMb),
      ram_used: formatMemory(node.metrics?.memoryUsedMb ?? undefined),
      os: node.os,
      arch: node.arch,
      hostname: node.hostname,
      agent_version: node.agentVersion,
    },
    loaded_models: w.resident.map((m) => ({
      name: m,
      memory_usage: formatMemory(catalogue.find((c) => c.id === m)?.gpuMemoryMb),
      load_time: formatDuration(stats.loadTimeS.get(m)),
      last_used: iso(stats.lastUsed.get(m)),
    })),
    current_tasks: w.running.length,
    current_task_ids: w.running.map((s) => s.taskId),
    last_heartbeat: node.lastHeartbeat ?? null,
    performance_score: stats.performanceScore,
    task_history: {
      completed_today: stats.completedToday,
      average_duration: formatDuration(stats.averageDurationS ?? 0) ?? '0s',
      success_rate: stats.successRate,
    },
    metrics: {
      tasks_per_hour: stats.tasksPerHour,
      average_response_time: formatDuration(stats.averageResponseS ?? 0) ?? '0s',
      error_rate: stats.errorRate,
    },
  };
}

/** GET /models/assignments: `loaded` once the heartbeat shows the server, `loading` before. */
export function assignmentsView(
  workers: Worker[],
  catalogue: ModelSpec[],
  loadTimes: Map<string, Map<string, number>>,
) {
  return {
    assignments: workers
      .filter((w) => w.resident.length || w.reported.length)
      .map((w) => ({
        worker_id: w.id,
        name: w.name,
        online: w.online,
        models: [...new Set([...w.resident, ...w.reported])].sort().map((m) => ({
          name: m,
          status: w.reported.includes(m)
            ? ('loaded' as const)
            : w.resident.includes(m)
              ? ('loading' as const)
              : ('unloading' as const),
          memory_usage: formatMemory(catalogue.find((c) => c.id === m)?.gpuMemoryMb),
          load_time: formatDuration(loadTimes.get(w.id)?.get(m)),
        })),
      })),
  };
}

export function catalogueView(m: ModelSpec, builtIn: boolean) {
  return {
    id: m.id,
    kind: m.kind,
    type: m.type,
    image: m.image,
    port: m.port,
    protocol: m.protocol,
    path: m.path,
    gpu_memory_mb: m.gpuMemoryMb,
    size: formatMemory(m.sizeMb ?? m.gpuMemoryMb),
    max_width: m.maxWidth ?? null,
    max_height: m.maxHeight ?? null,
    min_steps: m.minSteps ?? null,
    max_steps: m.maxSteps ?? null,
    load_seconds: m.loadSeconds,
    command: m.command ?? null,
    cloud: m.cloud ?? null,
    built_in: builtIn,
  };
}
