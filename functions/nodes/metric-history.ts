import type { AppContext } from '../core/context.js';
import { metricHistoryKeys } from '../core/keys.js';
import { queryAll, type StoreItem, updateIf } from '../ports/store.js';
import type { NodeMetrics } from '../../protocol/messages.js';
import { nodeView } from './routes.js';
import type { NodeItem } from './nodes.js';

/**
 * Metric history of each node: 1-minute points kept 24 h and 5-minute points kept 30 days.
 *
 * Cost: a heartbeat writes only when it is the first of its minute (told from the node's previous
 * heartbeat, no read) or the node's first, as one attribute of an hour item (60 points, ~2 KB); the first heartbeat of
 * a 5-minute bucket also writes the average of the bucket before into a 6-hour item (72 points).
 * Reads query a day in 25 items, 30 days in 121.
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
const HOUR_MS = 60 * MINUTE_MS;
const SIX_HOURS_MS = 6 * HOUR_MS;
export const FINE_KEEP_MS = 24 * HOUR_MS;
export const COARSE_KEEP_MS = 30 * 24 * HOUR_MS;

interface HistoryItem extends StoreItem {
  nodeId: string;
  /** Start of the item's span, epoch ms. */
  start: number;
  /** One attribute a point: `p<index in the span>` = packed fields. */
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

async function writePoint(
  ctx: AppContext,
  key: { pk: string; sk: string },
  nodeId: string,
  start: number,
  index: number,
  point: Packed,
  keepMs: number,
  spanMs: number,
): Promise<HistoryItem | undefined> {
  return updateIf<HistoryItem>(
    ctx.store,
    key.pk,
    key.sk,
    {
      set: { nodeId, start, [`p${index}`]: point, expiresAt: Math.floor((start + spanMs + keepMs) / 1000) },
    },
    // Created by the first point; a second heartbeat racing in the same minute writes nothing.
    { absent: [`p${index}`] },
  );
}

/**
 * The heartbeat hook: records `metrics` when this heartbeat opens a new minute for the node.
 * `node` is the node as it was before this heartbeat (its previous heartbeat time). Never throws:
 * history must not fail a heartbeat.
 */
export async function recordMetricHistory(
  ctx: AppContext,
  node: NodeItem,
  metrics: NodeMetrics,
): Promise<void> {
  try {
    const now = ctx.now();
    const prev = node.lastHeartbeatMs;
    const minute = floorTo(now, MINUTE_MS);
    // Registration also stamps lastHeartbeatMs: a node's first metrics are kept whatever the minute.
    if (prev !== undefined && node.metrics && floorTo(prev, MINUTE_MS) === minute) return;
    const hour = floorTo(now, HOUR_MS);
    const fine = await writePoint(
      ctx,
      metricHistoryKeys.fine(node.nodeId, hour),
      node.nodeId,
      hour,
      (minute - hour) / MINUTE_MS,
      pointOf(node, metrics, ctx),
      FINE_KEEP_MS,
      HOUR_MS,
    );
    const bucket = floorTo(now, FIVE_MINUTES_MS);
    if (!fine || prev === undefined || floorTo(prev, FIVE_MINUTES_MS) === bucket) return;
    // The bucket just closed, averaged from its minute points (in this hour's item, or the previous hour's).
    const closed = floorTo(prev, FIVE_MINUTES_MS);
    if (now - closed > 2 * FIVE_MINUTES_MS) return; // the node was away: nothing to average
    const closedHour = floorTo(closed, HOUR_MS);
    const item =
      closedHour === hour
        ? fine
        : await ctx.store.get<HistoryItem>(...pkSk(metricHistoryKeys.fine(node.nodeId, closedHour)));
    const points: Packed[] = [];
    for (let m = closed; m < closed + FIVE_MINUTES_MS; m += MINUTE_MS) {
      const p = item?.[`p${(m - closedHour) / MINUTE_MS}`];
      if (p) points.push(p);
    }
    if (!points.length) return;
    const span = floorTo(closed, SIX_HOURS_MS);
    await writePoint(
      ctx,
      metricHistoryKeys.coarse(node.nodeId, span),
      node.nodeId,
      span,
      (closed - span) / FIVE_MINUTES_MS,
      average(points),
      COARSE_KEEP_MS,
      SIX_HOURS_MS,
    );
  } catch (error) {
    ctx.logger.warn('metric history not recorded', { nodeId: node.nodeId, error: error as Error });
  }
}

const pkSk = (k: { pk: string; sk: string }) => [k.pk, k.sk] as const;

/** Points of a node in [since, until), oldest first, at 60 s or 300 s steps. */
export async function readMetricHistory(
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
  const items = await queryAll<HistoryItem>(ctx.store, from.pk, { between: [from.sk, to.sk] });
  const out: Point[] = [];
  for (const item of items) {
    for (let i = 0; i * stepMs < spanMs; i++) {
      const packed = item[`p${i}`];
      const t = item.start + i * stepMs;
      if (!packed || t < since || t >= until) continue;
      const point = { t } as Point;
      POINT_FIELDS.forEach((f, j) => (point[f] = packed[j] ?? null));
      out.push(point);
    }
  }
  return out;
}
