import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { AppContext } from '../core/context.js';
import { allInstances } from '../orchestrator/model.js';
import { assemble, getNodeRecord, isOnline, listNodes, nodeLabels, type NodeItem } from '../nodes/nodes.js';
import { SHARDS, fleetAggregate, type LiveRecord, type MetricsRecord } from '../nodes/node-records.js';
import { fleetKeys } from '../core/keys.js';
import { readRecentCounts } from '../cluster/task-counts.js';
import { jobStats } from '../training/jobs.js';
import { detectProblems } from '../commander/maintenance/problems.js';
import { cumulativeBuckets, histogramSum, readCounters, type CounterItem } from './counters.js';
import { PRIORITY_CRITICAL, PRIORITY_HIGH, PRIORITY_LOW } from '../task-planner/priority.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/**
 * The DCGM exporter's names and labels for per-GPU readings, so the community Grafana dashboards
 * built on dcgm-exporter (e.g. NVIDIA's "NVIDIA DCGM Exporter Dashboard", id 12239) show this fleet
 * as they are. Units as DCGM reports them: percent, MiB, Celsius, watts, MHz.
 */
const DCGM = {
  DCGM_FI_DEV_GPU_UTIL: 'GPU utilization (in %).',
  DCGM_FI_DEV_MEM_COPY_UTIL: 'Memory utilization (in %).',
  DCGM_FI_DEV_FB_USED: 'Framebuffer memory used (in MiB).',
  DCGM_FI_DEV_FB_FREE: 'Framebuffer memory free (in MiB).',
  DCGM_FI_DEV_GPU_TEMP: 'GPU temperature (in C).',
  DCGM_FI_DEV_POWER_USAGE: 'Power draw (in W).',
  DCGM_FI_DEV_SM_CLOCK: 'SM clock frequency (in MHz).',
} as const;
const GPU_LABELS = ['gpu', 'UUID', 'device', 'modelName', 'Hostname', 'node_id', 'node', 'cluster'] as const;
const NODE_LABELS = ['node_id', 'node', 'Hostname', 'cluster'] as const;

/** The bucket of a normalised task priority (-1..2) as the Cluster Manager names it. */
function priorityName(p: number): string {
  if (p >= PRIORITY_CRITICAL) return 'critical';
  if (p >= PRIORITY_HIGH) return 'high';
  if (p <= PRIORITY_LOW) return 'low';
  return 'normal';
}

type Labels<K extends readonly string[]> = Record<K[number], string>;

function nodeLabelValues(n: NodeItem): Labels<typeof NODE_LABELS> {
  return {
    node_id: n.nodeId,
    node: n.nodeName,
    Hostname: n.hostname,
    cluster: n.cluster ?? nodeLabels(n)['cluster'] ?? '',
  };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Node-state records `GET /metrics` serves inline (two pages of METRICS_PAGE_RECORDS); past that, per-node series are paged. */
const inlineRecords = (ctx: AppContext) => 2 * ctx.config.METRICS_PAGE_RECORDS;
/** A page reads at most this many records however far the fleet grew since the sweep cut the pages. */
const pageReadLimit = (ctx: AppContext) => 4 * ctx.config.METRICS_PAGE_RECORDS;
/** The sweep's parts older than this no longer cut pages or count nodes. */
const AGGREGATE_MAX_AGE_MS = 3 * 60_000;

/** Whether every shard's node-state records fit `budget` (read in bounded pages, never the fleet). */
async function fleetFits(ctx: AppContext, budget: number): Promise<boolean> {
  let left = budget;
  for (const shard of SHARDS) {
    const { items, cursor } = await ctx.store.query(fleetKeys.nodeStatePk(shard), { limit: left + 1 });
    left -= items.length;
    if (cursor || left < 0) return false;
  }
  return true;
}

/**
 * Page `page` of shard `shard`: the nodes between two of the boundaries the sweep recorded (page
 * 0 from the shard's start, the last to its end), with their META for the series' labels.
 * Empty past the last page.
 */
async function nodePage(ctx: AppContext, shard: number, page: number): Promise<NodeItem[]> {
  const agg = await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS);
  const starts = agg?.starts?.[String(shard)] ?? [];
  const pages = Math.max(1, starts.length);
  if (page >= pages) return [];
  // Sort keys are `<nodeId>#...`: a space sorts before any node id.
  const from = page === 0 ? ' ' : starts[page]!;
  const to = page + 1 < starts.length ? starts[page + 1]! : '\uffff';
  const { items } = await ctx.store.query<LiveRecord | MetricsRecord>(fleetKeys.nodeStatePk(shard), {
    between: [from, to],
    limit: pageReadLimit(ctx),
  });
  const lives = items.filter((r): r is LiveRecord => r.sk.endsWith(fleetKeys.nodeLiveSuffix) && r.sk < to);
  const samples = new Map(
    items
      .filter((r): r is MetricsRecord => !r.sk.endsWith(fleetKeys.nodeLiveSuffix))
      .map((r) => [r.nodeId, r] as const),
  );
  const metas = await Promise.all(lives.map((l) => getNodeRecord(ctx, l.nodeId)));
  return lives.flatMap((l, i) => (metas[i] ? [assemble(metas[i], l, samples.get(l.nodeId))] : []));
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
 * `fleet_node_series_pages`), each page its own scrape target with only those series.
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
    for (const n of await nodePage(ctx, target.shard, target.page)) addNodeSeries(ctx, nodeSeries, n, now);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  // The sweep's count first; a probe of at most METRICS_INLINE_RECORDS records when it has none or a small one.
  const latest = await fleetAggregate(ctx, AGGREGATE_MAX_AGE_MS);
  const counted = latest ? 2 * (latest.nodes ?? latest.onlineNodes) : 0;
  const paged = counted > inlineRecords(ctx) || !(await fleetFits(ctx, inlineRecords(ctx)));
  const agg = paged ? latest : undefined;
  const [nodes, instances, { live: queued, recent }, jobs, counters] = await Promise.all([
    paged ? ([] as NodeItem[]) : listNodes(ctx),
    allInstances(ctx),
    readRecentCounts(ctx),
    jobStats(ctx),
    readCounters(ctx),
  ]);
  const nodeSeries = nodeGauges(gauge);
  const byState = new Map<string, number>();
  for (const n of nodes) {
    const state = addNodeSeries(ctx, nodeSeries, n, now) ? 'online' : 'offline';
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

  const containers = gauge('fleet_containers', 'Service containers (orchestrator copies) by state.', [
    'state',
  ] as const);
  const counts = new Map<string, number>();
  for (const i of instances) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  for (const [state, n] of counts) containers.set({ state }, n);

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

type GaugeFactory = <K extends readonly string[]>(
  name: string,
  help: string,
  labelNames: K,
) => Gauge<K[number]>;

/** The per-node and per-GPU gauges, registered in the order they are exposed. */
function nodeGauges(gauge: GaugeFactory) {
  const up = gauge('fleet_node_up', 'Whether the node heartbeats (1) or is offline (0).', NODE_LABELS);
  const lastBeat = gauge(
    'fleet_node_last_heartbeat_timestamp_seconds',
    'When the node last heartbeat (Unix time).',
    NODE_LABELS,
  );
  const cpu = gauge('fleet_node_cpu_percent', 'Host CPU utilisation (in %).', NODE_LABELS);
  const memUsed = gauge('fleet_node_memory_used_bytes', 'Host memory in use.', NODE_LABELS);
  const memTotal = gauge('fleet_node_memory_total_bytes', 'Host memory.', NODE_LABELS);
  const diskUsed = gauge('fleet_node_disk_used_bytes', 'Engine root filesystem in use.', NODE_LABELS);
  const diskTotal = gauge('fleet_node_disk_total_bytes', 'Engine root filesystem size.', NODE_LABELS);
  const dcgm = Object.fromEntries(
    Object.entries(DCGM).map(([name, help]) => [name, gauge(name, help, GPU_LABELS)]),
  ) as Record<keyof typeof DCGM, Gauge<(typeof GPU_LABELS)[number]>>;
  const jetsonGpu = gauge(
    'fleet_jetson_gpu_load_percent',
    'Jetson GPU (GR3D) load from tegrastats (in %).',
    NODE_LABELS,
  );
  const jetsonGpuFreq = gauge(
    'fleet_jetson_gpu_frequency_mhz',
    'Jetson GPU (GR3D) clock from tegrastats (in MHz).',
    NODE_LABELS,
  );
  const jetsonEmc = gauge(
    'fleet_jetson_emc_percent',
    'Jetson memory controller (EMC) load from tegrastats (in %).',
    NODE_LABELS,
  );
  const jetsonRam = gauge(
    'fleet_jetson_ram_used_bytes',
    'Jetson RAM in use from tegrastats (CPU and GPU share it).',
    NODE_LABELS,
  );
  const jetsonTemp = gauge('fleet_jetson_temperature_celsius', 'Jetson thermal zone from tegrastats.', [
    ...NODE_LABELS,
    'zone',
  ] as const);
  const jetsonPower = gauge(
    'fleet_jetson_power_milliwatts',
    'Jetson power rail, current reading from tegrastats.',
    [...NODE_LABELS, 'rail'] as const,
  );
  return {
    up,
    lastBeat,
    cpu,
    memUsed,
    memTotal,
    diskUsed,
    diskTotal,
    dcgm,
    jetsonGpu,
    jetsonGpuFreq,
    jetsonEmc,
    jetsonRam,
    jetsonTemp,
    jetsonPower,
  };
}

/** One node's series; whether it is online. */
function addNodeSeries(ctx: AppContext, g: ReturnType<typeof nodeGauges>, n: NodeItem, now: number): boolean {
  const {
    up,
    lastBeat,
    cpu,
    memUsed,
    memTotal,
    diskUsed,
    diskTotal,
    dcgm,
    jetsonGpu,
    jetsonGpuFreq,
    jetsonEmc,
    jetsonRam,
    jetsonTemp,
    jetsonPower,
  } = g;
  const labels = nodeLabelValues(n);
  const online = isOnline(n, ctx, now);
  up.set(labels, online ? 1 : 0);
  if (n.lastHeartbeatMs) lastBeat.set(labels, Math.floor(n.lastHeartbeatMs / 1000));
  const m = n.metrics;
  if (!online || !m) return online;
  const set = (g: Gauge<(typeof NODE_LABELS)[number]>, v: number | null | undefined, scale = 1) => {
    if (typeof v === 'number') g.set(labels, v * scale);
  };
  set(cpu, m.cpuPercent);
  set(memUsed, m.memoryUsedMb, MIB);
  set(memTotal, m.memoryTotalMb, MIB);
  set(diskUsed, m.diskUsedGb, GIB);
  set(diskTotal, m.diskTotalGb, GIB);
  for (const g of m.gpus) {
    const gl = {
      ...labels,
      gpu: String(g.index),
      UUID: g.uuid ?? '',
      device: `nvidia${g.index}`,
      modelName: g.name,
    };
    const put = (name: keyof typeof DCGM, v: number | null | undefined) => {
      if (typeof v === 'number') dcgm[name].set(gl, v);
    };
    put('DCGM_FI_DEV_GPU_UTIL', g.utilizationGpu);
    put('DCGM_FI_DEV_MEM_COPY_UTIL', g.utilizationMemory);
    put('DCGM_FI_DEV_FB_USED', g.memoryUsedMiB);
    put('DCGM_FI_DEV_FB_FREE', g.memoryFreeMiB);
    put('DCGM_FI_DEV_GPU_TEMP', g.temperatureC);
    put('DCGM_FI_DEV_POWER_USAGE', g.powerDrawW);
    put('DCGM_FI_DEV_SM_CLOCK', g.clockSmMHz);
  }
  const t = m.tegrastats;
  if (t) {
    const gpuLoad = num(t['gpuLoadPercent']);
    if (gpuLoad !== undefined) jetsonGpu.set(labels, gpuLoad);
    const gpuFreq = num(t['gpuFreqMHz']);
    if (gpuFreq !== undefined) jetsonGpuFreq.set(labels, gpuFreq);
    const emc = num(t['emcPercent']);
    if (emc !== undefined) jetsonEmc.set(labels, emc);
    const ram = num(t['ramUsedMB']);
    if (ram !== undefined) jetsonRam.set(labels, ram * MIB);
    for (const [zone, c] of Object.entries((t['temperatures'] ?? {}) as Record<string, unknown>)) {
      const v = num(c);
      if (v !== undefined) jetsonTemp.set({ ...labels, zone }, v);
    }
    for (const [rail, r] of Object.entries(
      (t['powerRails'] ?? {}) as Record<string, { currentMw?: unknown }>,
    )) {
      const v = num(r?.currentMw);
      if (v !== undefined) jetsonPower.set({ ...labels, rail }, v);
    }
  }

  return online;
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
