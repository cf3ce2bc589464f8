import type { AppContext } from '../core/context.js';
import { ValidationError } from '../core/errors.js';
import { isOnline, listNodes, readerAggregate, resolveNode, type NodeItem } from '../nodes/nodes.js';
import { fleetInstanceCounts, totalOf } from './instance-counts.js';
import { addHost, emptyHost, type HostPart } from '../nodes/fleet-aggregate.js';

/**
 * The orchestrator's host-level views, read across the fleet: "docker" is the nodes' engines
 * (through their agents), "database" is the table (the document names PostgreSQL; there is none), system resources are the online nodes' sum.
 */

const r1 = (n: number) => Math.round(n * 10) / 10;

interface Totals extends HostPart {
  cpuPercent: number;
}

const withCpu = (h: HostPart): Totals => ({ ...h, cpuPercent: h.cores ? h.cpuWeighted / h.cores : 0 });

function totals(nodes: NodeItem[]): Totals {
  const host = emptyHost();
  for (const n of nodes) addHost(host, { cores: n.cpuCount, memoryMb: n.memoryMb, diskGb: n.diskGb }, n);
  return withCpu(host);
}

/**
 * The online nodes summed and the fleet counted: from the sweep's aggregate (a record per shard,
 * whatever the fleet), else (no sweep yet, or parts from before the host sums) from every node.
 */
async function fleetTotals(ctx: AppContext): Promise<{ nodes: number; online: number; totals: Totals }> {
  const agg = await readerAggregate(ctx);
  if (agg?.host)
    return { nodes: agg.nodes ?? agg.onlineNodes, online: agg.onlineNodes, totals: withCpu(agg.host) };
  const now = ctx.now();
  const nodes = await listNodes(ctx);
  const online = nodes.filter((n) => isOnline(n, ctx, now));
  return { nodes: nodes.length, online: online.length, totals: totals(online) };
}

const pct = (used: number, total: number) => (total > 0 ? r1((used / total) * 100) : 0);

/** GET /system/resources: every online node summed, or one node (`?node_id=`, id or name). */
export async function systemResources(ctx: AppContext, nodeRef?: string) {
  let t: Totals;
  if (nodeRef !== undefined) {
    const node = await resolveNode(ctx, nodeRef);
    if (!node)
      throw new ValidationError([
        { loc: ['query', 'node_id'], msg: `Unknown node: ${nodeRef}`, type: 'value_error' },
      ]);
    t = totals([node]);
  } else t = (await fleetTotals(ctx)).totals;
  return {
    system: {
      cpu: {
        total_cores: t.cores,
        current_usage_percent: r1(t.cpuPercent),
        available_cores: r1(t.cores * (1 - t.cpuPercent / 100)),
      },
      memory: {
        total_gb: r1(t.memTotalMb / 1024),
        available_gb: r1((t.memTotalMb - t.memUsedMb) / 1024),
        usage_percent: pct(t.memUsedMb, t.memTotalMb),
      },
      disk: {
        total_gb: r1(t.diskTotalGb),
        free_gb: r1(t.diskTotalGb - t.diskUsedGb),
        usage_percent: pct(t.diskUsedGb, t.diskTotalGb),
      },
    },
    docker: {
      containers_running: t.containersRunning,
      total_cpu_usage: r1(t.containerCpu),
      total_memory_usage_mb: Math.round(t.containerMemMb),
    },
  };
}

async function attempt<T>(
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error: (error as Error).message || String(error) };
  }
}

/** The store this control plane really has (the NVIDIA document names PostgreSQL; there is none). */
export function storeName(ctx: AppContext): string {
  const table = ctx.config.TABLE_NAME;
  if (ctx.mode === 'embedded') return `DynamoDB table ${table} (embedded dynalite)`;
  if (ctx.mode === 'emulator') return `DynamoDB table ${table} (emulator)`;
  return `DynamoDB table ${table}`;
}

/** GET /health/detailed. `ERROR` (503) when the table is unreachable, `DEGRADED` when no node is online. */
export async function detailedHealth(ctx: AppContext) {
  const now = ctx.now();
  const db = await attempt(() => ctx.store.ping());
  const fleet = await attempt(() => fleetTotals(ctx));
  const containers = await attempt(async () => totalOf(await fleetInstanceCounts(ctx)));
  const online = fleet.ok ? fleet.value.online : 0;
  const t = fleet.ok ? fleet.value.totals : totals([]);
  const components = {
    docker: !fleet.ok
      ? { status: 'ERROR', message: fleet.error }
      : online
        ? { status: 'OK', message: `Connected: ${online} of ${fleet.value.nodes} nodes online` }
        : {
            status: 'WARNING',
            message: fleet.value.nodes
              ? `No node online (${fleet.value.nodes} registered)`
              : 'No node registered',
          },
    database: db.ok
      ? { status: 'OK', message: `Connected: ${storeName(ctx)}` }
      : { status: 'ERROR', message: db.error },
    container_manager: containers.ok
      ? { status: 'OK', message: `Managing ${containers.value} containers` }
      : { status: 'ERROR', message: containers.error },
    system_resources: {
      status: Math.max(t.cpuPercent, pct(t.memUsedMb, t.memTotalMb)) > 90 ? 'WARNING' : 'OK',
      cpu_usage: `${r1(t.cpuPercent).toFixed(1)}%`,
      memory_usage: `${pct(t.memUsedMb, t.memTotalMb).toFixed(1)}%`,
    },
  };
  const states = Object.values(components).map((c) => c.status);
  const status = states.includes('ERROR') ? 'ERROR' : states.every((s) => s === 'OK') ? 'OK' : 'DEGRADED';
  return { status, timestamp: new Date(now).toISOString(), components };
}

/** GET /test/integration: each check really runs against the table and the nodes' last reports. */
export async function integrationTest(ctx: AppContext) {
  const now = ctx.now();
  const db = await attempt(() => ctx.store.ping());
  const fleet = await attempt(() => fleetTotals(ctx));
  const containers = await attempt(async () => totalOf(await fleetInstanceCounts(ctx)));
  const online = fleet.ok ? fleet.value.online : 0;
  const t = fleet.ok ? fleet.value.totals : totals([]);
  const pass = (message: string) => ({ status: 'PASS' as const, message });
  const fail = (message: string) => ({ status: 'FAIL' as const, message });
  const tests = {
    docker_connection: !fleet.ok
      ? fail(fleet.error)
      : online
        ? pass(`${online} node agent(s) connected`)
        : fail('No node agent online'),
    container_listing: containers.ok
      ? pass(`Found ${containers.value} managed containers`)
      : fail(containers.error),
    database: db.ok ? pass(`Database connected: ${storeName(ctx)}`) : fail(db.error),
    system_resources: online
      ? pass(`${t.cores} CPU cores, ${r1(t.memTotalMb / 1024)}GB RAM`)
      : fail('No online node reports resources'),
    health_monitoring: t.samples
      ? pass(`Health data available: ${t.samples} recent records`)
      : fail('No recent health data'),
  };
  const overall = Object.values(tests).every((x) => x.status === 'PASS')
    ? ('PASSED' as const)
    : ('FAILED' as const);
  return { timestamp: new Date(now).toISOString(), tests, overall_status: overall };
}
