import { HttpError, ValidationError } from '../core/errors.js';
import { getNode, isOnline } from '../nodes/nodes.js';
import { baseUrlOf } from '../system/install.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { createInstance, InvalidCursorError, listInstances, requireInstance } from './instances.js';
import { computeMetrics } from './metrics.js';
import { triggerMigration } from './migration.js';
import { executionView, migrationHistory, migrationStatus } from './migration-views.js';
import { instanceSummary, instanceView } from './model.js';
import { rateHeaders, takeToken, type RateBucket } from './ratelimit.js';
import {
  createBody,
  createResponse,
  historyQuery,
  historyResponse,
  instanceParams,
  instanceResponse,
  listQuery,
  listResponse,
  metricsResponse,
  statusResponse,
  triggerBody,
  triggerResponse,
} from './schemas.js';

/**
 * Per-IP rate limit, before the body is even parsed (so malformed floods are refused too; every
 * request is counted by the HTTP pipeline). The X-RateLimit-* headers go on every answer, errors included.
 */
function limited(bucket: RateBucket): NonNullable<RouteSpec['hook']> {
  return async (req, ctx) => {
    const verdict = await takeToken(ctx, bucket, req.sourceIp ?? 'unknown');
    const headers = rateHeaders(verdict);
    if (!verdict.allowed) {
      throw new HttpError(
        429,
        `Rate limit exceeded: ${verdict.limit} requests per ${bucket === 'general' ? 'hour' : 'minute'}`,
        'RATE_LIMIT_EXCEEDED',
        { limit: verdict.limit, retryAfter: verdict.retryAfterSeconds },
        { ...headers, 'retry-after': String(verdict.retryAfterSeconds) },
      );
    }
    return { headers };
  };
}

const common = (tag: string, bucket: RateBucket): Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'hook'> => ({
  tags: [tag],
  errorStyle: 'novita',
  scope: 'user',
  hook: limited(bucket),
});

const limits = { 429: 'Rate limit exceeded (X-RateLimit-* headers)' };

/** The Novita GPU Instance API (docs: novita-gpu-instance-api.md). */
export function novitaRoutes(): AnyRoute[] {
  return [
    route({
      ...common('Novita instances', 'create'),
      method: 'POST',
      path: '/api/instances',
      summary: 'Create a Novita GPU instance: cheapest deployable product of that name in the region, then watched until running',
      body: createBody,
      response: createResponse,
      successStatus: 201,
      responses: {
        ...limits,
        401: 'The configured Novita API key is missing or refused',
        502: 'Novita answered with an error',
        503: 'Novita unreachable, throttling, or out of capacity',
      },
      handler: async (req, ctx) => createInstance(ctx, req.body, { baseUrl: baseUrlOf(req.headers) }),
    }),
    route({
      ...common('Novita instances', 'status'),
      method: 'GET',
      path: '/api/instances',
      summary: 'Managed instances, newest first',
      query: listQuery,
      response: listResponse,
      responses: { ...limits, 400: 'VALIDATION_ERROR: invalid query, or a cursor this listing did not give' },
      handler: async (req, ctx) => {
        const { limit, offset, status, cursor } = req.query;
        try {
          const page = await listInstances(ctx, { status, limit, offset, ...(cursor ? { cursor } : {}) });
          return { instances: page.items.map(instanceSummary), total: page.total, limit, offset: page.offset, cursor: page.cursor ?? null };
        } catch (error) {
          if (!(error instanceof InvalidCursorError)) throw error;
          throw new ValidationError([{ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' }], 400);
        }
      },
    }),
    route({
      ...common('Novita instances', 'status'),
      method: 'GET',
      path: '/api/instances/{instanceId}',
      summary: 'One instance: status, port mappings and connection details',
      params: instanceParams,
      response: instanceResponse,
      responses: { ...limits, 404: 'INSTANCE_NOT_FOUND' },
      handler: async (req, ctx) => {
        const item = await requireInstance(ctx, req.params.instanceId);
        if (!item.joinFleet) return instanceView(item);
        const node = item.nodeId ? await getNode(ctx, item.nodeId) : undefined;
        return {
          ...instanceView(item),
          node: node ? { id: node.nodeId, name: node.nodeName, status: isOnline(node, ctx) ? 'online' : 'offline' } : null,
        };
      },
    }),
    route({
      ...common('Novita metrics', 'general'),
      method: 'GET',
      path: '/api/metrics',
      summary: 'Request, instance, job, cache and process metrics',
      response: metricsResponse,
      responses: limits,
      handler: async (_req, ctx) => computeMetrics(ctx),
    }),
    route({
      ...common('Novita migration', 'status'),
      method: 'GET',
      path: '/api/migration/status',
      summary: 'The spot migration service: last and next execution, statistics, configuration',
      response: statusResponse,
      responses: limits,
      handler: async (_req, ctx) => migrationStatus(ctx),
    }),
    route({
      ...common('Novita migration', 'general'),
      method: 'POST',
      path: '/api/migration/trigger',
      summary: 'Queue a migration of reclaimed spot instances now (dryRun: plan only)',
      body: triggerBody,
      response: triggerResponse,
      successStatus: 202,
      responses: { ...limits, 409: 'MIGRATION_JOB_CONFLICT: a migration job is in progress' },
      handler: async (req, ctx) =>
        triggerMigration(ctx, {
          dryRun: req.body?.dryRun ?? ctx.config.NOVITA_MIGRATION_DRY_RUN,
          ...(req.body?.maxMigrations !== undefined ? { maxMigrations: req.body.maxMigrations } : {}),
          triggeredBy: 'manual',
        }),
    }),
    route({
      ...common('Novita migration', 'general'),
      method: 'GET',
      path: '/api/migration/history',
      summary: 'Migration executions, newest first, with their summaries',
      query: historyQuery,
      response: historyResponse,
      responses: limits,
      handler: async (req, ctx) => {
        const { limit, offset, status } = req.query;
        const { items, total } = await migrationHistory(ctx, { limit, offset, status });
        return { executions: items.map(executionView), total, limit, offset };
      },
    }),
  ];
}
