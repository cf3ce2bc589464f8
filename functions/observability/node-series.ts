/**
 * The per-node and per-GPU series of `GET /metrics` (prometheus.ts), and the pages they come in
 * past two pages of node-state records: a node's series with its service containers' counts, so a
 * request reads the instances of the nodes it serves and never every instance of the fleet.
 */
import type { Gauge } from 'prom-client';
import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import { nodeInstances, type InstanceItem } from '../orchestrator/model.js';
import { assemble, getNodeRecord, isOnline, nodeLabels, type NodeItem } from '../nodes/nodes.js';
import { SHARDS, type LiveRecord, type MetricsRecord } from '../nodes/node-records.js';
import { AGGREGATE_MAX_AGE_MS, fleetAggregate } from '../nodes/fleet-aggregate.js';

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
export const inlineRecords = (ctx: AppContext) => 2 * ctx.config.METRICS_PAGE_RECORDS;
/** A page reads at most this many records however far the fleet grew since the sweep cut the pages. */
const pageReadLimit = (ctx: AppContext) => 4 * ctx.config.METRICS_PAGE_RECORDS;

/** Whether every shard's node-state records fit `budget` (read in bounded pages, never the fleet). */
export async function fleetFits(ctx: AppContext, budget: number): Promise<boolean> {
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
export async function nodePage(ctx: AppContext, shard: number, page: number): Promise<NodeItem[]> {
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

/** The service containers of each of `nodes` (one index query a node), by node id. */
export async function instancesOf(ctx: AppContext, nodes: NodeItem[]): Promise<Map<string, InstanceItem[]>> {
  const lists = await Promise.all(nodes.map((n) => nodeInstances(ctx, n.nodeId)));
  return new Map(nodes.map((n, i) => [n.nodeId, lists[i]!] as const));
}

export type GaugeFactory = <K extends readonly string[]>(
  name: string,
  help: string,
  labelNames: K,
) => Gauge<K[number]>;

/** The per-node and per-GPU gauges, registered in the order they are exposed. */
export function nodeGauges(gauge: GaugeFactory) {
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
  const containers = gauge(
    'fleet_node_containers',
    'Service containers (orchestrator copies) on the node by state.',
    [...NODE_LABELS, 'state'] as const,
  );
  return {
    up,
    lastBeat,
    containers,
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

/** One node's series, its service containers' counts with them; whether it is online. */
export function addNodeSeries(
  ctx: AppContext,
  g: ReturnType<typeof nodeGauges>,
  n: NodeItem,
  now: number,
  instances: InstanceItem[],
): boolean {
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
  const byState = new Map<string, number>();
  for (const i of instances) byState.set(i.status, (byState.get(i.status) ?? 0) + 1);
  for (const [state, count] of byState) g.containers.set({ ...labels, state }, count);
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
