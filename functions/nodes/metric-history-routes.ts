import * as z from 'zod';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { route, type AnyRoute } from '../core/route.js';
import { COARSE_KEEP_MS, FINE_KEEP_MS, POINT_FIELDS, readMetricHistory } from './metric-history.js';
import { resolveNode } from './nodes.js';

const HOUR_MS = 3_600_000;

const pointOut = z.object({
  t: z.string().describe('Start of the minute (or 5 minutes) the point stands for, ISO 8601'),
  cpu: z.number().nullable().describe('CPU use, %'),
  memory: z.number().nullable().describe('Memory use, %'),
  gpu: z.number().nullable().describe('GPU utilisation averaged over the GPUs, %'),
  gpu_memory: z.number().nullable().describe('GPU memory use averaged over the GPUs, %'),
  gpu_memory_mib: z.number().nullable().describe('GPU memory in use summed over the GPUs, MiB'),
  temperature: z.number().nullable().describe('Hottest GPU (or Jetson zone), °C'),
  disk: z.number().nullable().describe('Disk use, %'),
});

/** GET /api/nodes/{node_id}/metrics: the stored history of nodes/metric-history.ts. */
export function metricHistoryRoutes(): AnyRoute[] {
  return [
    route({
      tags: ['Nodes'],
      errorStyle: 'fastapi',
      scope: 'user',
      method: 'GET',
      path: '/api/nodes/{node_id}/metrics',
      summary:
        'Metric history of a node (id or name): 1-minute points for the last 24 h, 5-minute averages for 30 days',
      params: z.object({ node_id: z.string().min(1) }),
      query: z.object({
        since: z.iso.datetime({ offset: true }).optional().describe('Default: an hour before `until`'),
        until: z.iso.datetime({ offset: true }).optional().describe('Default: now'),
        step: z.coerce
          .number()
          .int()
          .refine((s) => s === 60 || s === 300, 'step is 60 or 300 (seconds)')
          .optional()
          .describe(
            'Seconds between points: 60 (kept 24 h) or 300 (kept 30 days); default 60 when `since` is within 24 h',
          ),
      }),
      response: z.object({
        node_id: z.string(),
        step: z.number().int(),
        since: z.string(),
        until: z.string(),
        fields: z.array(z.string()),
        points: z.array(pointOut),
      }),
      responses: { 404: 'Unknown node', 400: 'Bad range or step' },
      handler: async (req, ctx) => {
        const now = ctx.now();
        const until = req.query.until ? Date.parse(req.query.until) : now;
        const since = req.query.since ? Date.parse(req.query.since) : until - HOUR_MS;
        const bad = (field: string, msg: string) =>
          new ValidationError([{ loc: ['query', field], msg, type: 'value_error' }]);
        if (since >= until) throw bad('since', 'since must be before until');
        if (until - since > COARSE_KEEP_MS) throw bad('since', 'A range spans 30 days at most');
        // A minute's slack: "the last 24 h" computed by a client a moment ago still reads 1-minute points.
        const fine = now - since <= FINE_KEEP_MS + 60_000;
        const step = req.query.step ?? (fine ? 60 : 300);
        if (step === 60 && !fine)
          throw bad('step', '1-minute points are kept 24 h: use step=300 for older ranges');
        const node = await resolveNode(ctx, req.params.node_id);
        if (!node) throw new NotFoundError(`Node ${req.params.node_id} not found`);
        const points = await readMetricHistory(ctx, node.nodeId, since, until, step as 60 | 300);
        return {
          node_id: node.nodeId,
          step,
          since: new Date(since).toISOString(),
          until: new Date(until).toISOString(),
          fields: [...POINT_FIELDS],
          points: points.map((p) => ({ ...p, t: new Date(p.t).toISOString() })),
        };
      },
    }),
  ];
}
