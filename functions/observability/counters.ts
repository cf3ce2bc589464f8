import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AppContext } from '../core/context.js';
import { observabilityKeys } from '../core/keys.js';
import { queryAll, type StoreItem } from '../ports/store.js';

/**
 * The control plane's own counters. On Lambda many instances serve the same API, so a
 * process-local counter would show one instance's share: every event adds to a small stored
 * counter item instead (an atomic ADD, one update per item touched). Events are buffered per
 * process and flushed when METRICS_FLUSH_SECONDS (10 s) have passed since the last flush (0: at
 * once), so a busy instance writes each item at most once per interval however many requests it
 * serves; a read flushes its own process first, so a single process (the local runtime) is exact.
 * What an instance buffered is lost if Lambda retires it before its next request.
 * On AWS each event is also an EMF value (Powertools' metrics), written to the function's log
 * with the flush: CloudWatch turns it into a metric without an API call.
 */

/** Upper bounds (seconds) of the latency histograms: commands (issue → result) and tasks (submit → finish). */
export const LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

/** The CloudWatch namespace of the EMF metrics (the stack's alarms and dashboard read it). */
export const EMF_NAMESPACE = 'GpuFleet';

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];
type EmfValue = [name: string, unit: Unit, value: number];

export interface CounterItem extends StoreItem {
  [attr: string]: unknown;
}

interface Pending {
  items: Map<string, Record<string, number>>;
  lastFlush: number;
  emf?: Metrics;
}

const pending = new WeakMap<AppContext, Pending>();

function state(ctx: AppContext): Pending {
  let p = pending.get(ctx);
  if (!p) {
    p = { items: new Map(), lastFlush: 0 };
    if (ctx.mode === 'lambda' || ctx.config.METRICS_EMF)
      p.emf = new Metrics({ namespace: EMF_NAMESPACE, serviceName: ctx.config.SERVICE_NAME });
    pending.set(ctx, p);
  }
  return p;
}

function merge(into: Map<string, Record<string, number>>, sk: string, add: Record<string, number>): void {
  const item = into.get(sk) ?? {};
  for (const [k, v] of Object.entries(add)) item[k] = (item[k] ?? 0) + v;
  into.set(sk, item);
}

/** Writes every buffered item (one ADD each) and the EMF document. A failed item is kept for the next flush. */
export async function flushCounters(ctx: AppContext): Promise<void> {
  const p = state(ctx);
  const items = p.items;
  p.items = new Map();
  p.lastFlush = Date.now();
  if (p.emf?.hasStoredMetrics()) p.emf.publishStoredMetrics();
  for (const [sk, add] of items) {
    try {
      await ctx.store.update(observabilityKeys.pk, sk, { add }, {});
    } catch (error) {
      merge(p.items, sk, add);
      ctx.logger.warn('counter flush failed', { counter: sk, error: error as Error });
    }
  }
}

async function count(
  ctx: AppContext,
  sk: string,
  add: Record<string, number>,
  emf: EmfValue[] = [],
): Promise<void> {
  const p = state(ctx);
  merge(p.items, sk, add);
  if (p.emf) for (const [name, unit, value] of emf) p.emf.addMetric(name, unit, value);
  if (Date.now() - p.lastFlush >= ctx.config.METRICS_FLUSH_SECONDS * 1000) await flushCounters(ctx);
}

/** The histogram fields of one observation: its bucket (`b<i>`, `inf` past the last), the sum and the count. */
function observe(seconds: number): Record<string, number> {
  const i = LATENCY_BUCKETS.findIndex((le) => seconds <= le);
  return { [i < 0 ? 'inf' : `b${i}`]: 1, sum: seconds, count: 1 };
}

/** One HTTP request, by route template (not the raw path: ids would make a series each) and status. */
export function countHttpRequest(
  ctx: AppContext,
  method: string,
  route: string,
  status: number,
  durationMs: number,
): Promise<void> {
  return count(
    ctx,
    observabilityKeys.http(method, route),
    { [`s${status}`]: 1, ms: Math.max(0, Math.round(durationMs)) },
    [
      ['HttpRequests', MetricUnit.Count, 1],
      ...(status >= 500 ? [['Http5xx', MetricUnit.Count, 1] as EmfValue] : []),
      ...(status >= 400 && status < 500 ? [['Http4xx', MetricUnit.Count, 1] as EmfValue] : []),
    ],
  );
}

/** A command's first result: issue → result latency, by command type and outcome. */
export function countCommandResult(
  ctx: AppContext,
  type: string,
  status: string,
  seconds: number,
): Promise<void> {
  return count(ctx, observabilityKeys.command(type), { ...observe(seconds), [status]: 1 }, [
    ['CommandLatency', MetricUnit.Seconds, seconds],
    [status === 'succeeded' ? 'CommandsSucceeded' : 'CommandsFailed', MetricUnit.Count, 1],
  ]);
}

/** A task finished (completed, failed, timed out...): submit → finish latency, by outcome. */
export function countTaskFinished(ctx: AppContext, outcome: string, seconds: number): Promise<void> {
  return count(ctx, observabilityKeys.task(outcome), observe(seconds), [
    ['TaskLatency', MetricUnit.Seconds, seconds],
    [outcome === 'completed' ? 'TasksCompleted' : 'TasksFailed', MetricUnit.Count, 1],
  ]);
}

/** A placement decision on a task: placed, lost to a concurrent run, failed, or requeued after a failed dispatch. */
export function countPlacement(
  ctx: AppContext,
  outcome: 'placed' | 'lost' | 'failed' | 'requeued',
): Promise<void> {
  return count(ctx, observabilityKeys.placements, { [outcome]: 1 }, [
    [outcome === 'placed' ? 'Placements' : 'PlacementsNotPlaced', MetricUnit.Count, 1],
  ]);
}

const n = (v: unknown) => (typeof v === 'number' ? v : 0);

/** A placement that switched a node to the task's model (unloading what it held): counted beside `placed`. */
export function countModelSwitch(ctx: AppContext): Promise<void> {
  return count(ctx, observabilityKeys.placements, { switched: 1 }, [['ModelSwitches', MetricUnit.Count, 1]]);
}

export interface PlacementCounts {
  placed: number;
  /** Placements that switched a node's model first (a subset of `placed`). */
  switched: number;
  lost: number;
  failed: number;
  requeued: number;
}

const placementCounts = (item: CounterItem | undefined): PlacementCounts => ({
  placed: n(item?.['placed']),
  switched: n(item?.['switched']),
  lost: n(item?.['lost']),
  failed: n(item?.['failed']),
  requeued: n(item?.['requeued']),
});

/** The placement counters alone: one item read (this process's buffer flushed first). */
export async function readPlacementCounts(ctx: AppContext): Promise<PlacementCounts> {
  await flushCounters(ctx);
  return placementCounts(
    await ctx.store.get<CounterItem>(observabilityKeys.pk, observabilityKeys.placements),
  );
}

/** A Novita cache lookup (product list, templates). */
export function countCacheLookup(ctx: AppContext, hit: boolean): Promise<void> {
  return count(ctx, observabilityKeys.novitaCache, { [hit ? 'hits' : 'misses']: 1 });
}

export const emfEnabled = (ctx: AppContext): boolean => state(ctx).emf !== undefined;

/** Fleet gauges for CloudWatch (the alarm on offline nodes, the dashboard), emitted by the sweep. */
export function emitFleetGauges(
  ctx: AppContext,
  g: { online: number; offline: number; gpuUtilization?: number; queueDepth: number },
): void {
  const emf = state(ctx).emf;
  if (!emf) return;
  emf.addMetric('NodesOnline', MetricUnit.Count, g.online);
  emf.addMetric('NodesOffline', MetricUnit.Count, g.offline);
  emf.addMetric('TaskQueueDepth', MetricUnit.Count, g.queueDepth);
  if (g.gpuUtilization !== undefined) emf.addMetric('GpuUtilization', MetricUnit.Percent, g.gpuUtilization);
  emf.publishStoredMetrics();
}

export interface StoredCounters {
  http: { method: string; route: string; byStatus: Map<number, number>; durationMs: number }[];
  commands: Map<string, CounterItem>;
  tasks: Map<string, CounterItem>;
  /** Placement outcomes (placed, lost, failed, requeued). */
  placements: Record<string, number>;
  /** Placements that switched a node's model first. */
  modelSwitches: number;
  novitaCache: { hits: number; misses: number };
}

/** Every stored counter item (this process's buffer flushed first): one query of one partition. */
export async function readCounters(ctx: AppContext): Promise<StoredCounters> {
  await flushCounters(ctx);
  const items = await queryAll<CounterItem>(ctx.store, observabilityKeys.pk, {});
  const out: StoredCounters = {
    http: [],
    commands: new Map(),
    tasks: new Map(),
    placements: {},
    modelSwitches: 0,
    novitaCache: { hits: 0, misses: 0 },
  };
  for (const item of items) {
    const hash = item.sk.indexOf('#');
    const kind = hash < 0 ? item.sk : item.sk.slice(0, hash);
    const rest = hash < 0 ? '' : item.sk.slice(hash + 1);
    if (kind === 'HTTP') {
      const space = rest.indexOf(' ');
      const byStatus = new Map<number, number>();
      for (const [k, v] of Object.entries(item))
        if (/^s\d{3}$/.test(k)) byStatus.set(Number(k.slice(1)), n(v));
      out.http.push({
        method: rest.slice(0, space),
        route: rest.slice(space + 1),
        byStatus,
        durationMs: n(item['ms']),
      });
    } else if (kind === 'CMD') out.commands.set(rest, item);
    else if (kind === 'TASK') out.tasks.set(rest, item);
    else if (item.sk === observabilityKeys.placements) {
      const { switched, ...outcomes } = placementCounts(item);
      out.placements = outcomes;
      out.modelSwitches = switched;
    } else if (item.sk === observabilityKeys.novitaCache)
      out.novitaCache = { hits: n(item['hits']), misses: n(item['misses']) };
  }
  return out;
}

/** Cumulative bucket counts of a stored histogram item, Prometheus' way (`le` upper bounds, +Inf last). */
export function cumulativeBuckets(item: CounterItem): { le: string; count: number }[] {
  let running = 0;
  const out = LATENCY_BUCKETS.map((le, i) => ({ le: String(le), count: (running += n(item[`b${i}`])) }));
  out.push({ le: '+Inf', count: running + n(item['inf']) });
  return out;
}

export const histogramSum = (item: CounterItem) => n(item['sum']);
export const counterValue = (item: CounterItem, attr: string) => n(item[attr]);
