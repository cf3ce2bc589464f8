import * as z from 'zod';
import { readPlacementCounts } from '../observability/counters.js';
import { NotFoundError } from '../core/errors.js';
import { nodePage, nodePageQuery, readerAggregate, resolveNode } from '../nodes/nodes.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { REBALANCE_STRATEGIES } from '../task-planner/index.js';
import { getModel, listModels } from './catalogue.js';
import { formatMemory, formatUptime, round1 } from './format.js';
import { cancelTask } from './lifecycle.js';
import {
  loadClusterMetrics,
  recentDurations,
  currentSample,
  takeSample,
  TIMEFRAMES,
  workerStats,
  type Timeframe,
} from './metrics.js';
import { rebalance, restartWorker } from './model-ops.js';
import { clusterModelRoutes } from './model-routes.js';
import { getTask, submitTask, type TaskItem } from './tasks.js';
import { readNodeHours } from './task-stats.js';
import { countOf, readTaskCounts } from './task-counts.js';
import { MAX_OFFSET, pageFrom, queuePage, taskPage } from './task-pages.js';
import { estimateWait } from './wait-estimate.js';
import {
  imageParameterIssues,
  clusterPriority,
  submitTaskRequest,
  throwIfIssues,
  unknownModel,
} from './validation.js';
import { clusterTaskView, taskListItem, workerDetail, workerListItem, workerStatus } from './views.js';
import { loadWorker, loadWorkers, pageWorkers } from './workers.js';
import type { AppContext } from '../core/context.js';
import * as S from './schemas.js';

const common: Pick<RouteSpec, 'errorStyle' | 'scope'> = {
  errorStyle: 'fastapi',
  scope: 'user',
};

const workerIdParams = z.object({ worker_id: z.string().min(1) });
const taskIdParams = z.object({ task_id: z.string().min(1) });

interface FleetSummary {
  nodes: number;
  online: number;
  gpuUtilization: number | null;
  memTotalMb: number;
  memUsedMb: number;
  clusters: Record<string, number>;
  since: number | undefined;
}

/**
 * The fleet in figures: from the sweep's aggregate (one record per shard, whatever the fleet);
 * from every node only before the first sweep. The aggregate's memory counts the online nodes that
 * report both total and used GPU memory.
 */
async function fleetSummary(ctx: AppContext): Promise<FleetSummary> {
  const agg = await readerAggregate(ctx);
  if (agg)
    return {
      nodes: agg.nodes ?? agg.onlineNodes,
      online: agg.onlineNodes,
      gpuUtilization: agg.utilCount ? round1(agg.utilSum / agg.utilCount) : null,
      memTotalMb: agg.memTotalMb,
      memUsedMb: agg.memUsedMb,
      clusters: agg.clusters ?? {},
      since: agg.since,
    };
  const workers = await loadWorkers(ctx, []);
  const online = workers.filter((w) => w.online);
  const clusters: Record<string, number> = {};
  for (const w of workers) if (w.node.cluster) clusters[w.node.cluster] = (clusters[w.node.cluster] ?? 0) + 1;
  const since = workers
    .map((w) => Date.parse(w.node.registeredAt))
    .filter(Number.isFinite)
    .reduce<number | undefined>((a, b) => Math.min(a ?? b, b), undefined);
  return {
    nodes: workers.length,
    online: online.length,
    gpuUtilization: takeSample(workers, [], [], ctx.now()).gpuUtilization,
    memTotalMb: online.reduce((s, w) => s + w.gpuMemoryTotalMb, 0),
    memUsedMb: online.reduce((s, w) => s + (w.gpuMemoryUsedMb ?? 0), 0),
    clusters,
    since,
  };
}

/** The Cluster Manager API over the shared task queue and the fleet's nodes. */
export function clusterRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      tags: ['Cluster'],
      method: 'GET',
      path: '/cluster/status',
      summary: 'Cluster status: workers, queue, GPU utilisation and memory',
      response: S.clusterStatusOut,
      handler: async (_req, ctx) => {
        const [fleet, taskCounts, counts] = await Promise.all([
          fleetSummary(ctx),
          readTaskCounts(ctx, { finished: false }),
          readPlacementCounts(ctx),
        ]);
        const clusters = Object.keys(fleet.clusters);
        const firstSeen = Math.min(fleet.since ?? Infinity, ctx.startedAt);
        const status: z.output<typeof S.clusterStatusOut>['status'] =
          fleet.nodes === 0
            ? 'no_workers'
            : fleet.online === 0
              ? 'down'
              : fleet.online * 2 < fleet.nodes
                ? 'degraded'
                : 'operational';
        return {
          cluster_id: (clusters.length === 1 ? clusters[0] : undefined) ?? ctx.config.SERVICE_NAME,
          status,
          total_workers: fleet.nodes,
          active_workers: fleet.online,
          queued_tasks: taskCounts.states.queued,
          // Counted, not read: tasks placed and not finished.
          running_tasks: taskCounts.states.assigned + taskCounts.states.running,
          gpu_utilization: fleet.gpuUtilization ?? 0,
          total_memory: formatMemory(fleet.memTotalMb),
          available_memory: formatMemory(Math.max(0, fleet.memTotalMb - fleet.memUsedMb)),
          uptime: formatUptime(ctx.now() - firstSeen),
          placements: {
            placed: counts.placed,
            model_switches: counts.switched,
            requeued: counts.requeued,
            lost: counts.lost,
            failed: counts.failed,
          },
        };
      },
    }),
    route({
      ...common,
      tags: ['Workers'],
      method: 'GET',
      path: '/workers',
      summary: 'Registered workers (fleet nodes) and their status',
      query: z.object({
        status: z.enum(['online', 'offline', 'busy', 'error']).optional(),
        gpu_type: z.string().min(1).optional(),
        ...nodePageQuery,
      }),
      response: S.workersOut,
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => {
        const { limit, cursor, name_prefix } = req.query;
        const [page, durations] = await Promise.all([
          nodePage(ctx, { limit, cursor, name_prefix }),
          recentDurations(ctx),
        ]);
        const wholeFleet = cursor === undefined && name_prefix === undefined && page.cursor === undefined;
        const all = await pageWorkers(ctx, page.nodes, wholeFleet);
        const gpu = req.query.gpu_type?.toLowerCase();
        // Filters apply within the page: a filtered page may hold fewer than `limit`.
        const listed = all.filter(
          (w) =>
            (!req.query.status || workerStatus(w) === req.query.status) &&
            (!gpu || (w.gpuType ?? '').toLowerCase().includes(gpu)),
        );
        // One query of its own hour records per listed worker, whatever the tasks.
        const now = ctx.now();
        const workers = await Promise.all(
          listed.map(async (w) =>
            workerListItem(w, workerStats(await readNodeHours(ctx, w.id), now, durations.fleet)),
          ),
        );
        // Counts of the list returned, filters applied.
        return {
          workers,
          total: workers.length,
          online: workers.filter((w) => w.status !== 'offline').length,
          offline: workers.filter((w) => w.status === 'offline').length,
          next_cursor: page.cursor ?? null,
        };
      },
    }),
    route({
      ...common,
      tags: ['Workers'],
      method: 'GET',
      path: '/workers/{worker_id}',
      summary:
        'One worker: GPU, system, loaded models, task history and metrics from its hourly task statistics',
      params: workerIdParams,
      response: S.workerDetailOut,
      responses: { 404: 'Unknown worker' },
      handler: async (req, ctx) => {
        // Its own records only: the node, its slots and hour records; the fleet's mean run time.
        const w = await loadWorker(ctx, req.params.worker_id);
        if (!w) throw new NotFoundError(`Worker ${req.params.worker_id} not found`);
        const [hours, durations, catalogue] = await Promise.all([
          readNodeHours(ctx, w.id),
          recentDurations(ctx),
          listModels(ctx),
        ]);
        return workerDetail(w, workerStats(hours, ctx.now(), durations.fleet), catalogue);
      },
    }),
    route({
      ...common,
      tags: ['Workers'],
      method: 'POST',
      path: '/workers/{worker_id}/restart',
      summary: "Restart a worker's serving stack: its tasks are requeued, its model servers removed",
      params: workerIdParams,
      response: S.workerRestartOut,
      responses: { 404: 'Unknown worker', 409: 'Worker offline' },
      handler: async (req, ctx) => restartWorker(ctx, req.params.worker_id),
    }),
    route({
      ...common,
      tags: ['Tasks'],
      method: 'POST',
      path: '/tasks',
      summary: 'Submit a task to the shared queue',
      body: submitTaskRequest,
      response: S.taskSubmittedOut,
      responses: { 422: 'Invalid parameters, unknown model, or parameters outside the model limits' },
      handler: async (req, ctx) => {
        const b = req.body;
        const model = await getModel(ctx, b.model_name);
        if (!model) throw unknownModel('model_name', b.model_name);
        throwIfIssues(imageParameterIssues(model, b.parameters));
        const task = await submitTask(ctx, {
          source: 'cluster',
          taskType: b.task_type,
          model: model.id,
          parameters: b.parameters,
          priority: clusterPriority(b.priority),
          priorityInput: b.priority,
          ...(b.timeout !== undefined ? { timeoutSeconds: b.timeout } : {}),
          ...(b.requirements
            ? {
                requirements: {
                  ...(b.requirements.gpu_type ? { gpuType: b.requirements.gpu_type } : {}),
                  ...(b.requirements.labels ? { labels: b.requirements.labels } : {}),
                },
              }
            : {}),
        });
        return {
          task_id: task.taskId,
          status: task.status,
          estimated_wait_time: await estimateWait(ctx, task),
          assigned_worker: null,
          created_at: task.createdAt,
        };
      },
    }),
    route({
      ...common,
      tags: ['Tasks'],
      method: 'GET',
      path: '/tasks/{task_id}',
      summary: 'Status and result of a task (vision jobs included)',
      params: taskIdParams,
      response: S.taskOut,
      responses: { 404: 'Unknown task' },
      handler: async (req, ctx) => {
        const t = await getTask(ctx, req.params.task_id);
        if (!t) throw new NotFoundError(`Task ${req.params.task_id} not found`);
        return clusterTaskView(t);
      },
    }),
    route({
      ...common,
      tags: ['Tasks'],
      method: 'GET',
      path: '/tasks',
      summary: 'Tasks, newest first, filtered by status and worker',
      query: z.object({
        status: z.enum(['queued', 'assigned', 'running', 'completed', 'failed', 'cancelled']).optional(),
        worker_id: z.string().min(1).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(50),
        offset: z.coerce.number().int().min(0).max(MAX_OFFSET).default(0),
        cursor: z.string().min(1).max(4096).optional(),
      }),
      response: S.tasksOut,
      responses: { 400: 'Invalid pagination cursor' },
      handler: async (req, ctx) => {
        const { status, worker_id, limit, offset, cursor } = req.query;
        // A worker by its id or its name; an unknown one has no tasks.
        const nodeId =
          worker_id === undefined ? undefined : ((await resolveNode(ctx, worker_id))?.nodeId ?? worker_id);
        const match = (t: TaskItem) => (!status || t.status === status) && (!nodeId || t.nodeId === nodeId);
        // Queued tasks are on no worker; alone they are read from the queue index, newest first.
        const read = (limit: number, from?: string) =>
          status === 'queued' && !nodeId
            ? queuePage(ctx, { limit, cursor: from, order: 'newest' })
            : taskPage(ctx, { limit, cursor: from, match });
        const [page, counts] = await Promise.all([
          pageFrom(read, limit, offset, cursor),
          readTaskCounts(ctx, { finished: true }),
        ]);
        return {
          tasks: page.items.map(taskListItem),
          // Counted, not read: with a worker, the tasks listed so far (and one more when a page follows).
          total: nodeId
            ? page.offset + page.items.length + (page.cursor ? 1 : 0)
            : countOf(counts.states, status),
          limit,
          offset: page.offset,
          cursor: page.cursor ?? null,
        };
      },
    }),
    route({
      ...common,
      tags: ['Tasks'],
      method: 'DELETE',
      path: '/tasks/{task_id}',
      summary: 'Cancel a queued or running task (a running one gets task.cancel on its node)',
      params: taskIdParams,
      response: S.taskCancelledOut,
      responses: { 404: 'Unknown task', 409: 'Task already finished' },
      handler: async (req, ctx) => {
        const t = await cancelTask(ctx, req.params.task_id);
        return { message: 'Task cancelled', task_id: t.taskId, status: t.status };
      },
    }),
    ...clusterModelRoutes(),
    route({
      ...common,
      tags: ['Cluster'],
      method: 'POST',
      path: '/cluster/rebalance',
      summary: 'Rebalance models across workers (memory_optimized, load_balanced); dry_run only plans',
      body: z.object({
        strategy: z
          .enum(REBALANCE_STRATEGIES as unknown as ['memory_optimized', 'load_balanced'])
          .default('memory_optimized'),
        force: z.boolean().default(false),
        dry_run: z.boolean().default(false),
      }),
      response: S.rebalanceOut,
      handler: async (req, ctx) => rebalance(ctx, req.body),
    }),
    route({
      ...common,
      tags: ['Cluster'],
      method: 'GET',
      path: '/cluster/metrics',
      summary:
        'Task outcomes and throughput from task statistics; GPU and memory from per-minute fleet samples',
      query: z.object({
        timeframe: z.enum(Object.keys(TIMEFRAMES) as [Timeframe, ...Timeframe[]]).default('24h'),
      }),
      response: S.clusterMetricsOut,
      handler: async (req, ctx) => {
        const [counts, catalogue] = await Promise.all([
          readTaskCounts(ctx, { finished: false }),
          listModels(ctx),
        ]);
        const { queued, assigned, running } = counts.states;
        const live = await currentSample(ctx, catalogue, counts);
        return loadClusterMetrics(ctx, req.query.timeframe, live, queued + assigned + running);
      },
    }),
  ];
}
