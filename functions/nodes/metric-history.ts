import type { AppContext } from '../core/context.js';
import { metricHistoryKeys } from '../core/keys.js';
import { queryAll, type StoreItem, updateIf } from '../ports/store.js';
import type { NodeMetrics } from '../../protocol/messages.js';
import { liveKey, type HistoryBuffer, type LiveRecord } from './node-records.js';
import { nodeView } from './routes.js';
import type { NodeItem } from './nodes.js';

/**
 * Metric history of each node: 1-minute points kept 24 h and 5-minute averages kept 30 days.
 *
 * Cost: a heartbeat adds the first point of its minute to the node's liveness record, which it
 * writes anyway (10 points at most: the record stays under 600 bytes, one write unit). The first
 * heartbeat of the next 10 minutes writes them out: an item of their own (one unit, no read) and
 * the averages of their two 5-minute buckets into the hour's item of averages (one unit): 0.2
 * write units a minute. Readers add the points still on the liveness record.
 * A day of 1-minute points reads 144 small items (about 10 read units), 7 days of averages 168.
 */
/** The fields of a point, in the order they are stored (short arrays keep items small). */
export const POINT_FIELDS = [
  'cpu',
  'memory',
  'gpu',
  'gpu_memory',
  'gpu_memory_mib',
  'temperature',
  'disk',
] as const;
export type PointField = (typeof POINT_FIELDS)[number];
export type Point = { t: number } & Record<PointField, number | null>;
type Packed = (number | null)[];

export const MINUTE_MS = 60_000;
export const FIVE_MINUTES_MS = 5 * MINUTE_MS;
/** The span of points the liveness record carries, written out in one item when it closes. */
export const WINDOW_MS = 10 * MINUTE_MS;
const HOUR_MS = 60 * MINUTE_MS;
const SIX_HOURS_MS = 6 * HOUR_MS;
export const FINE_KEEP_MS = 24 * HOUR_MS;
export const COARSE_KEEP_MS = 30 * 24 * HOUR_MS;

/** A window's points written out; their averages are stored apart (the long charts read only those). */
interface BucketItem extends StoreItem {
  start: number;
  /** [minute in the window, ...fields] per point. */
  p: Packed[];
}

/** An hour of 5-minute averages: `a<bucket in the hour>` = packed fields. */
interface AveragesItem extends StoreItem {
  start: number;
  [average: `a${number}`]: Packed;
}

/** The layout before (`M1#`, `M5#`): one attribute a point, `p<index in the span>`. */
interface LegacyItem extends StoreItem {
  start: number;
  [point: `p${number}`]: Packed;
}

const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step;

/** The numbers of one heartbeat, as the node list shows them (percentages), plus GPU memory in MiB. */
export function pointOf(node: NodeItem, metrics: NodeMetrics, ctx: AppContext): Packed {
  const v = nodeView({ ...node, metrics }, ctx);
  const mib = (metrics.gpus ?? []).reduce((s, g) => s + (g.memoryUsedMiB ?? 0), 0);
  const hasGpu = (metrics.gpus ?? []).length > 0 || metrics.tegrastats != null;
  return [
    metrics.cpuPercent === null ? null : v.cpu,
    metrics.memoryUsedMb === null ? null : v.memory,
    hasGpu ? v.gpu : null,
    hasGpu ? v.gpu_memory : null,
    hasGpu ? mib : null,
    v.temperature,
    metrics.diskUsedGb === null ? null : v.disk,
  ];
}

function average(points: Packed[]): Packed {
  return POINT_FIELDS.map((_, i) => {
    const xs = points.map((p) => p[i]).filter((x): x is number => typeof x === 'number');
    return xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10 : null;
  });
}

/** The averages of the 5-minute buckets of a window's points that have any, by bucket start. */
function bucketAverages(buffer: HistoryBuffer): Map<number, Packed> {
  const byBucket = new Map<number, Packed[]>();
  for (const p of buffer.p) {
    const start = floorTo(buffer.b + (p[0] as number) * MINUTE_MS, FIVE_MINUTES_MS);
    byBucket.set(start, [...(byBucket.get(start) ?? []), p.slice(1)]);
  }
  return new Map([...byBucket].map(([start, points]) => [start, average(points)]));
}

/** Writes a closed window out: its points, and its buckets' averages into their hour. Never throws. */
export async function flushHistory(ctx: AppContext, nodeId: string, buffer: HistoryBuffer): Promise<void> {
  try {
    const hour = floorTo(buffer.b, HOUR_MS);
    const window = metricHistoryKeys.points(nodeId, buffer.b);
    const hourKey = metricHistoryKeys.averages(nodeId, hour);
    const averages = Object.fromEntries(
      [...bucketAverages(buffer)].map(([start, avg]) => [`a${(start - hour) / FIVE_MINUTES_MS}`, avg]),
    );
    await Promise.all([
      ctx.store.put<BucketItem>({
        ...window,
        start: buffer.b,
        p: buffer.p,
        expiresAt: Math.floor((buffer.b + WINDOW_MS + FINE_KEEP_MS) / 1000),
      }),
      // The condition lets the update create the hour's item; a window written out twice keeps its first averages.
      updateIf(
        ctx.store,
        hourKey.pk,
        hourKey.sk,
        {
          set: {
            start: hour,
            ...averages,
            expiresAt: Math.floor((hour + HOUR_MS + COARSE_KEEP_MS) / 1000),
          },
        },
        { absent: Object.keys(averages) },
      ),
    ]);
  } catch (error) {
    ctx.logger.warn('metric history not recorded', { nodeId, error: error as Error });
  }
}

/**
 * The heartbeat hook: what the liveness record carries after this beat. The first heartbeat of a
 * minute adds its point; the first of a new window writes the closed one out first.
 * `buffer`: what the liveness record carried before this beat.
 */
export async function advanceHistory(
  ctx: AppContext,
  node: NodeItem,
  buffer: HistoryBuffer | undefined,
  metrics: NodeMetrics,
): Promise<HistoryBuffer | undefined> {
  const now = ctx.now();
  const window = floorTo(now, WINDOW_MS);
  // A beat timed before the buffer's window (clocks apart) leaves it as it is.
  if (buffer && buffer.b > window) return buffer;
  let current = buffer;
  if (current && current.b < window) {
    await flushHistory(ctx, node.nodeId, current);
    current = undefined;
  }
  const minute = (floorTo(now, MINUTE_MS) - window) / MINUTE_MS;
  if (current?.p.some((p) => p[0] === minute)) return current;
  let point: Packed;
  try {
    point = pointOf(node, metrics, ctx);
  } catch (error) {
    ctx.logger.warn('metric history not recorded', { nodeId: node.nodeId, error: error as Error });
    return current;
  }
  return { b: window, p: [...(current?.p ?? []), [minute, ...point]] };
}

const point = (t: number, packed: Packed): Point => {
  const out = { t } as Point;
  POINT_FIELDS.forEach((f, j) => (out[f] = packed[j] ?? null));
  return out;
};

/** Points of a node in [since, until), oldest first, at 60 s or 300 s steps. */
export async function readMetricHistory(
  ctx: AppContext,
  nodeId: string,
  since: number,
  until: number,
  step: 60 | 300,
): Promise<Point[]> {
  const lk = liveKey(nodeId);
  const [stored, legacy, live] = await Promise.all([
    step === 60 ? readBuckets(ctx, nodeId, since, until) : readAverages(ctx, nodeId, since, until),
    readLegacy(ctx, nodeId, since, until, step),
    ctx.store.get<LiveRecord>(lk.pk, lk.sk),
  ]);
  const byTime = new Map<number, Point>();
  for (const p of [...legacy, ...stored]) byTime.set(p.t, p);
  // The points still on the liveness record: each minute's, or the averages of its buckets closed since.
  const buffer = live?.history;
  if (buffer && step === 60)
    for (const p of buffer.p) byTime.set(buffer.b + (p[0] as number) * MINUTE_MS, point(0, p.slice(1)));
  if (buffer && step === 300)
    for (const [start, avg] of bucketAverages(buffer))
      if (start + FIVE_MINUTES_MS <= ctx.now()) byTime.set(start, point(start, avg));
  return [...byTime.entries()]
    .filter(([t]) => t >= since && t < until)
    .sort((a, b) => a[0] - b[0])
    .map(([t, p]) => ({ ...p, t }));
}

async function readBuckets(ctx: AppContext, nodeId: string, since: number, until: number): Promise<Point[]> {
  const from = metricHistoryKeys.points(nodeId, floorTo(since, WINDOW_MS));
  const to = metricHistoryKeys.points(nodeId, floorTo(until, WINDOW_MS));
  const items = await queryAll<BucketItem>(ctx.store, from.pk, { between: [from.sk, to.sk] });
  return items.flatMap((item) =>
    item.p.map((p) => point(item.start + (p[0] as number) * MINUTE_MS, p.slice(1))),
  );
}

async function readAverages(ctx: AppContext, nodeId: string, since: number, until: number): Promise<Point[]> {
  const from = metricHistoryKeys.averages(nodeId, floorTo(since, HOUR_MS));
  const to = metricHistoryKeys.averages(nodeId, floorTo(until, HOUR_MS));
  const items = await queryAll<AveragesItem>(ctx.store, from.pk, { between: [from.sk, to.sk] });
  const out: Point[] = [];
  for (const item of items)
    for (let i = 0; i < HOUR_MS / FIVE_MINUTES_MS; i++) {
      const packed = item[`a${i}`];
      if (packed) out.push(point(item.start + i * FIVE_MINUTES_MS, packed));
    }
  return out;
}

/** The layout before this one (an hour of 1-minute points, six hours of averages an item), until it expires. */
async function readLegacy(
  ctx: AppContext,
  nodeId: string,
  since: number,
  until: number,
  step: 60 | 300,
): Promise<Point[]> {
  const stepMs = step * 1000;
  const spanMs = step === 60 ? HOUR_MS : SIX_HOURS_MS;
  const keyOf = step === 60 ? metricHistoryKeys.fine : metricHistoryKeys.coarse;
  const from = keyOf(nodeId, floorTo(since, spanMs));
  const to = keyOf(nodeId, floorTo(until, spanMs));
  const items = await queryAll<LegacyItem>(ctx.store, from.pk, { between: [from.sk, to.sk] });
  const out: Point[] = [];
  for (const item of items)
    for (let i = 0; i * stepMs < spanMs; i++) {
      const packed = item[`p${i}`];
      if (packed) out.push(point(item.start + i * stepMs, packed));
    }
  return out;
}
