import { createHash, timingSafeEqual } from 'node:crypto';
import { rawReply } from '../core/http.js';
import { ValidationError } from '../core/errors.js';
import type { AppContext } from '../core/context.js';
import { route, type AnyRoute } from '../core/route.js';
import * as z from 'zod';
import { NODE_SHARDS } from '../nodes/node-records.js';
import { renderMetrics } from './prometheus.js';

/** The Secrets port name of the token a Prometheus server may scrape with instead of an API key. */
export const SCRAPE_TOKEN_SECRET = 'metrics-scrape-token';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <scrape token>`, compared by digest so the token's length does not leak. */
async function scrapeTokenAuth(headers: Record<string, string>, ctx: AppContext): Promise<boolean> {
  const given = /^Bearer\s+(\S+)\s*$/i.exec(headers['authorization'] ?? '')?.[1];
  if (!given) return false;
  const token = await ctx.secrets.get(SCRAPE_TOKEN_SECRET);
  return token !== undefined && token !== '' && timingSafeEqual(digest(token), digest(given));
}

/** Prometheus scrape endpoint. */
export function observabilityRoutes(): AnyRoute[] {
  return [
    route({
      method: 'GET',
      path: '/metrics',
      summary:
        'The fleet in the Prometheus text format: DCGM exporter names per GPU, Jetson, nodes, queue, jobs',
      tags: ['Observability'],
      errorStyle: 'fastapi',
      scope: 'user',
      altAuth: scrapeTokenAuth,
      produces: 'text/plain',
      query: z.object({
        shard: z.coerce
          .number()
          .int()
          .min(0)
          .max(NODE_SHARDS - 1)
          .optional(),
        page: z.coerce.number().int().min(0).max(1_000_000).optional(),
      }),
      handler: async (req, ctx) => {
        const { shard, page } = req.query;
        if ((shard === undefined) !== (page === undefined))
          // 422 with the missing one named, as for any other query parameter the schema refuses.
          throw new ValidationError([
            {
              loc: ['query', shard === undefined ? 'shard' : 'page'],
              msg: 'shard and page go together: /metrics?shard=<0-7>&page=<n>',
              type: 'missing',
            },
          ]);
        const { body, contentType } = await renderMetrics(
          ctx,
          shard !== undefined && page !== undefined ? { shard, page } : undefined,
        );
        return rawReply(200, body, contentType, { 'cache-control': 'no-store' });
      },
    }),
  ];
}
