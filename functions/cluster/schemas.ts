import * as z from 'zod';
import { nextCursorField } from '../nodes/nodes.js';

/** Response schemas of the Cluster Manager API (functions/cluster/routes.ts, views.ts, model-ops.ts). */

/** "12.5GB", "512MB"; null when unknown. */
const memory = z.string().nullable();
/** "45.2s", "3m 20s"; null when unknown. */
const duration = z.string().nullable();
const workerStatus = z.enum(['online', 'offline', 'busy', 'error']);
const taskStatus = z.enum(['queued', 'assigned', 'running', 'completed', 'failed', 'cancelled']);
const gpuInfo = z.looseObject({
  model: z.string().nullable(),
  memory_total: memory,
  memory_used: memory,
  temperature: z.number().nullable(),
  utilization: z.number().nullable(),
});

export const clusterStatusOut = z.object({
  cluster_id: z.string(),
  status: z.enum(['no_workers', 'down', 'degraded', 'operational']),
  total_workers: z.number().int(),
  active_workers: z.number().int(),
  queued_tasks: z.number().int(),
  running_tasks: z.number().int(),
  gpu_utilization: z.number(),
  total_memory: memory,
  available_memory: memory,
  uptime: z.string(),
  placements: z
    .object({
      placed: z.number().int(),
      model_switches: z.number().int().describe('Placements that switched a node to another model first'),
      requeued: z.number().int(),
      lost: z.number().int(),
      failed: z.number().int(),
    })
    .describe(
      'Placement decisions since the deployment began (stored counters, every API instance adds to them)',
    ),
});

const workerItem = z.looseObject({
  worker_id: z.string(),
  name: z.string(),
  status: workerStatus,
  gpu_info: gpuInfo,
  loaded_models: z.array(z.string()),
  current_tasks: z.number().int(),
  max_concurrency: z.number().int(),
  cordoned: z.boolean().describe('No new task or model is placed here (POST /api/nodes/{node_id}/cordon)'),
  last_heartbeat: z.string().nullable(),
  /** 0-10: success rate times speed against the fleet average over 24 h; 10 with nothing finished. */
  performance_score: z.number(),
});

export const workersOut = z.object({
  workers: z.array(workerItem),
  total: z.number().int(),
  online: z.number().int(),
  offline: z.number().int(),
  next_cursor: nextCursorField,
});

export const workerDetailOut = z.looseObject({
  worker_id: z.string(),
  name: z.string(),
  status: workerStatus,
  cordoned: z.boolean(),
  gpu_info: gpuInfo,
  system_info: z.looseObject({}),
  loaded_models: z.array(z.looseObject({ name: z.string() })),
  /** A count, as in the list; the ids are in `current_task_ids`. */
  current_tasks: z.number().int(),
  current_task_ids: z.array(z.string()),
  last_heartbeat: z.string().nullable(),
  performance_score: z.number(),
  task_history: z.looseObject({
    completed_today: z.number().int(),
    average_duration: z.string(),
    success_rate: z.number(),
  }),
  metrics: z.looseObject({
    tasks_per_hour: z.number().int(),
    average_response_time: z.string(),
    error_rate: z.number(),
  }),
});

export const workerRestartOut = z.object({
  message: z.string(),
  worker_id: z.string(),
  estimated_downtime: duration,
  requeued_tasks: z.array(z.string()),
  unloaded_models: z.array(z.string()),
});

export const taskSubmittedOut = z.object({
  task_id: z.string(),
  status: taskStatus,
  estimated_wait_time: z.string(),
  assigned_worker: z.null(),
  created_at: z.string(),
});

export const taskOut = z.looseObject({
  task_id: z.string(),
  status: taskStatus,
  task_type: z.string(),
  model_name: z.string(),
  assigned_worker: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  duration,
  result: z.unknown(),
  error: z.string().nullable(),
  attempts: z.number().int(),
});

export const tasksOut = z.object({
  tasks: z.array(
    z.object({
      task_id: z.string(),
      status: taskStatus,
      task_type: z.string(),
      model_name: z.string(),
      assigned_worker: z.string().nullable(),
      duration,
      created_at: z.string(),
    }),
  ),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
  cursor: z.string().nullable().describe('Pass as ?cursor= for the next page; null on the last'),
});

export const taskCancelledOut = z.object({ message: z.string(), task_id: z.string(), status: taskStatus });

export const assignOut = z.object({
  assignment_id: z.string(),
  model_name: z.string(),
  priority: z.string(),
  preload: z.boolean(),
  assignments: z.array(z.looseObject({ worker_id: z.string() })),
});

export const unloadOut = z.object({
  message: z.string(),
  model_name: z.string(),
  affected_workers: z.array(z.string()),
  requeued_tasks: z.array(z.string()).optional(),
});

export const assignmentsOut = z.object({
  assignments: z.array(
    z.object({
      worker_id: z.string(),
      name: z.string(),
      online: z.boolean(),
      models: z.array(
        z.object({
          name: z.string(),
          status: z.enum(['loaded', 'loading', 'unloading']),
          memory_usage: memory,
          load_time: duration,
        }),
      ),
    }),
  ),
});

export const catalogueModelOut = z.looseObject({
  id: z.string(),
  kind: z.string(),
  type: z.string(),
  image: z.string(),
  port: z.number().int(),
  gpu_memory_mb: z.number(),
  built_in: z.boolean(),
});

export const rebalanceOut = z.object({
  rebalance_id: z.string(),
  status: z.enum(['dry_run', 'initiated', 'balanced']),
  strategy: z.string(),
  dry_run: z.boolean(),
  estimated_duration: duration,
  affected_workers: z.array(z.string()),
  operations: z.array(
    z.looseObject({ type: z.enum(['model_migration', 'model_load', 'model_unload']), model: z.string() }),
  ),
  requeued_tasks: z.array(z.string()).optional(),
});

const stats = z.object({
  average: z.number().nullable(),
  peak: z.number().nullable(),
  minimum: z.number().nullable(),
});

export const clusterMetricsOut = z.object({
  timeframe: z.string(),
  metrics: z.object({
    total_tasks: z.number().int(),
    successful_tasks: z.number().int(),
    failed_tasks: z.number().int(),
    success_rate: z.number(),
    average_response_time: duration,
    peak_throughput: z.string(),
    gpu_utilization: stats,
    memory_usage: z.object({
      average: z.string().nullable(),
      peak: z.string().nullable(),
      efficiency: z.number().nullable(),
    }),
    samples: z.number().int(),
  }),
});
