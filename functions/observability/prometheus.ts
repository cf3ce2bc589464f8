import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { AppContext } from '../core/context.js';
import { isOnline, listNodes, type NodeItem } from '../nodes/nodes.js';
import { SHARDS } from '../nodes/node-records.js';
import { AGGREGATE_MAX_AGE_MS, fleetAggregate } from '../nodes/fleet-aggregate.js';
import { readRecentCounts } from '../cluster/task-counts.js';
import { jobStats } from '../training/jobs.js';
import { detectProblems } from '../commander/maintenance/problems.js';
import { cumulativeBuckets, histogramSum, readCounters, type CounterItem } from './counters.js';
import { PRIORITY_CRITICAL, PRIORITY_HIGH, PRIORITY_LOW } from '../task-planner/priority.js';
import { addNodeSeries, fleetFits, inlineRecords, instancesOf, nodeGauges, nodePage } from './node-series.js';

/** The bucket of a normalised task priority (-1..2) as the Cluster Manager names it. */
function priorityName(p: number): string {
  if (p >= PRIORITY_CRITICAL) return 'critical';
  if (p >= PRIORITY_HIGH) return 'high';
  if (p <= PRIORITY_LOW) return 'low';
  return 'normal';
}

/**
 * The fleet in the Prometheus text format, from the stored records only (no call reaches an
 * agent): per GPU the DCGM exporter's metrics, Jetson readings from tegrastats, node CPU,
 * memory, disk and up/down, and the control plane's own state (nodes, containers, the task
 * queue, tasks of the last 24 hours, training jobs). Readings of offline nodes are left out, as
 * an exporter on a dead host would be; `fleet_node_up` says which.
 *
 * Bounded at any fleet size: while the node-state records fit two pages (METRICS_PAGE_RECORDS) the per-node
 * series come with the rest; past that the fleet series come from the sweep's aggregate and the
 * per-node series from `?shard=S&page=P` (pages of about 250 nodes the sweep cuts, counted by
 * `fleet_node_series_pages`), each page its own scrape target with only those series. Service
 * containers are read per node served (node-series.ts), so they follow the same pages.
 */
export async function renderMetrics(
  ctx: AppContext,
  target: { shard: number; page: number } | undefined = undefined,
): Promise<{ contentType: string; body: string }> {
  const registry = new Registry();
  const gauge = <K extends readonly string[]>(name: string, help: string, labelNames: K) =>
    new Gauge<K[number]>({ name, help, labelNames: [...labelNames], registers: [registry] });
  const now = ctx.now();

  if (target) {
    const nodeSeries = nodeGauges(gauge);
    const nodes = await nodePage(ctx, target.shard, target.page);
    const instances = await instancesOf(ctx, nodes);
    for (const n of nodes) addNodeSeries(ctx, nodeSeries, n, now, instances.get(n.nodeId)!);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  // The sweep's count first; a probe of at most METRICS_INLINE_RECORDS records when it has none or a small one.
  const latest = await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS);
  const counted = latest ? 2 * (latest.nodes ?? latest.onlineNodes) : 0;
  const paged = counted > inlineRecords(ctx) || !(await fleetFits(ctx, inlineRecords(ctx)));
  const agg = paged ? latest : undefined;
  const [nodes, { live: queued, recent }, jobs, counters] = await Promise.all([
    // Unpaged only when the probe just read every node-state record within inlineRecords: a bounded list.
    paged ? ([] as NodeItem[]) : listNodes(ctx),
    readRecentCounts(ctx),
    jobStats(ctx),
    readCounters(ctx),
  ]);
  // The service containers of the nodes served here (none when paged: each page reads its own).
  const byNode = await instancesOf(ctx, nodes);
  const instances = [...byNode.values()].flat();
  const nodeSeries = nodeGauges(gauge);
  const byState = new Map<string, number>();
  for (const n of nodes) {
    const state = addNodeSeries(ctx, nodeSeries, n, now, byNode.get(n.nodeId)!) ? 'online' : 'offline';
    byState.set(state, (byState.get(state) ?? 0) + 1);
  }
  if (agg) {
    byState.set('online', agg.onlineNodes);
    byState.set('offline', Math.max(0, (agg.nodes ?? agg.onlineNodes) - agg.onlineNodes));
  }
  if (paged) {
    const pages = gauge(
      'fleet_node_series_pages',
      'Per-node series pages of each node-state shard: scrape /metrics?shard=<shard>&page=<0..n-1>.',
      ['shard'] as const,
    );
    for (const shard of SHARDS)
      pages.set({ shard: String(shard) }, Math.max(1, agg?.starts?.[String(shard)]?.length ?? 1));
  }

  const nodesGauge = gauge('fleet_nodes', 'Nodes by state.', ['state'] as const);
  for (const state of ['online', 'offline']) nodesGauge.set({ state }, byState.get(state) ?? 0);

  // Paged, the fleet's count is `sum by (state) (fleet_node_containers)` over the pages.
  if (!paged) {
    const containers = gauge('fleet_containers', 'Service containers (orchestrator copies) by state.', [
      'state',
    ] as const);
    const counts = new Map<string, number>();
    for (const i of instances) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
    for (const [state, n] of counts) containers.set({ state }, n);
  }

  const depth = gauge('fleet_task_queue_depth', 'Queued inference tasks and vision jobs by priority.', [
    'priority',
  ] as const);
  for (const p of ['low', 'normal', 'high', 'critical']) depth.set({ priority: p }, 0);
  for (const [p, n] of queued.queuedByPriority) depth.inc({ priority: priorityName(p) }, n);

  const tasks = gauge(
    'fleet_tasks_last_24h',
    'Tasks queued, assigned and running now, and those finished in the last 24 hours, by status.',
    ['status'] as const,
  );
  for (const s of ['queued', 'assigned', 'running', 'completed', 'failed', 'cancelled'])
    tasks.set({ status: s }, 0);
  for (const [status, n] of Object.entries(recent)) tasks.set({ status }, n);

  const trainingJobs = gauge('fleet_training_jobs', 'Training jobs by status.', ['status'] as const);
  for (const [status, n] of Object.entries(jobs))
    if (status !== 'total_jobs') trainingJobs.set({ status }, n);

  const problems = gauge('fleet_problems', 'Open maintenance problems by type and severity.', [
    'type',
    'severity',
  ] as const);
  for (const p of detectProblems(nodes, instances, (n) => isOnline(n, ctx, now)))
    problems.inc({ type: p.type, severity: p.severity });
  // Paged: the node problems the records tell are per node (the maintenance API); the offline count is the sweep's.
  if (agg) problems.set({ type: 'node_offline', severity: 'critical' }, byState.get('offline') ?? 0);

  // The stored counters: every instance of the API adds to the same items.
  const counter = <K extends readonly string[]>(name: string, help: string, labelNames: K) =>
    new Counter<K[number]>({ name, help, labelNames: [...labelNames], registers: [registry] });
  const http = counter('fleet_http_requests_total', 'API requests by route template and status.', [
    'method',
    'route',
    'status',
  ] as const);
  const httpSeconds = counter(
    'fleet_http_request_duration_seconds_total',
    'Time spent answering API requests, by route template.',
    ['method', 'route'] as const,
  );
  for (const r of counters.http) {
    for (const [status, n] of r.byStatus)
      http.inc({ method: r.method, route: r.route, status: String(status) }, n);
    httpSeconds.inc({ method: r.method, route: r.route }, r.durationMs / 1000);
  }
  const commands = counter('fleet_commands_total', 'Node commands with a result, by type and outcome.', [
    'type',
    'status',
  ] as const);
  for (const [type, item] of counters.commands)
    for (const status of ['succeeded', 'failed']) commands.inc({ type, status }, Number(item[status] ?? 0));
  histogram(
    registry,
    'fleet_command_duration_seconds',
    "Node commands: from issue to the agent's result.",
    'type',
    counters.commands,
  );
  histogram(
    registry,
    'fleet_task_duration_seconds',
    'Inference tasks and vision jobs: from submission to their outcome.',
    'outcome',
    counters.tasks,
  );
  const placements = counter('fleet_placements_total', 'Placement decisions on queued tasks by outcome.', [
    'outcome',
  ] as const);
  for (const [outcome, n] of Object.entries(counters.placements)) placements.inc({ outcome }, n);
  counter(
    'fleet_model_switches_total',
    'Placements that switched a node to another model first (unloading what it held).',
    [] as const,
  ).inc(counters.modelSwitches);

  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** A histogram from stored bucket counts (prom-client's Histogram only observes in-process). */
function histogram(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  items: Map<string, CounterItem>,
): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: [...items].flatMap(([value, item]) => {
        const buckets = cumulativeBuckets(item);
        return [
          ...buckets.map((b) => ({
            metricName: `${name}_bucket`,
            labels: { [label]: value, le: b.le },
            value: b.count,
          })),
          { metricName: `${name}_sum`, labels: { [label]: value }, value: histogramSum(item) },
          { metricName: `${name}_count`, labels: { [label]: value }, value: buckets.at(-1)!.count },
        ];
      }),
    }),
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Metric);
}
