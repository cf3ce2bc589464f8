import * as z from 'zod';
import { rawReply, reply } from '../core/http.js';
import { route, type AnyRoute } from '../core/route.js';
import { VERSION } from '../core/version.js';
import { checkHealth } from './health.js';
import { DOCS_ASSETS, readDocsAsset, readPrebuiltOpenApi, redocPage, swaggerPage } from './docs.js';
import { NotFoundError } from '../core/errors.js';

const healthResponse = z.object({
  status: z.enum(['healthy', 'unhealthy']),
  timestamp: z.string(),
  uptime: z.number(),
  version: z.string(),
  service: z.string(),
  database_connected: z.boolean(),
  dependencies: z.record(z.string(), z.enum(['healthy', 'unhealthy', 'not_configured'])),
  migrationService: z
    .object({
      enabled: z.boolean(),
      lastExecution: z.string().nullable(),
      nextExecution: z.string().nullable(),
      status: z.string(),
      recentErrors: z.number(),
    })
    .optional(),
  errors: z.record(z.string(), z.string()).optional(),
});

/** Health and API reference. `all` returns the whole table, for the OpenAPI document. */
const openapiOut = z.looseObject({
  openapi: z.string(),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});

/** The document as it is (checked, not copied: a parse would reorder its keys). */
function asOpenApi(doc: unknown): z.output<typeof openapiOut> {
  if (!openapiOut.safeParse(doc).success)
    throw new Error('The OpenAPI document lacks openapi, info or paths');
  return doc as z.output<typeof openapiOut>;
}

export function systemRoutes(all: () => Promise<readonly AnyRoute[]>): AnyRoute[] {
  let openapi: z.output<typeof openapiOut> | undefined;
  return [
    route({
      method: 'GET',
      path: '/health',
      summary: 'Health of the API and every dependency (union of the documented health bodies)',
      tags: ['Health'],
      errorStyle: 'fastapi',
      scope: 'public',
      response: healthResponse,
      responses: { 503: 'A dependency is unhealthy' },
      handler: async (_req, ctx) => {
        const report = await checkHealth(ctx);
        return reply(report.status === 'healthy' ? 200 : 503, report);
      },
    }),
    route({
      method: 'GET',
      path: '/openapi.json',
      summary: 'OpenAPI 3.1 document of every route',
      tags: ['Docs'],
      errorStyle: 'fastapi',
      scope: 'public',
      response: openapiOut,
      handler: async (_req, ctx) => {
        if (!openapi) {
          // Bundles replace this test with true (lib/bundling.ts) and drop the else branch, and the
          // generator with it; unbundled, the document is generated on first use.
          if (process.env.FLEET_OPENAPI_PREBUILT === 'true') {
            openapi = asOpenApi(await readPrebuiltOpenApi(ctx.config.DOCS_ASSETS_DIR));
          } else {
            const { buildOpenApi } = await import('../core/openapi.js');
            openapi = asOpenApi(buildOpenApi([...(await all())], { version: VERSION }));
          }
        }
        return openapi;
      },
    }),
    route({
      method: 'GET',
      path: '/docs',
      summary: 'Swagger UI',
      tags: ['Docs'],
      errorStyle: 'fastapi',
      scope: 'public',
      produces: 'text/html',
      handler: async () => rawReply(200, swaggerPage('/openapi.json'), 'text/html; charset=utf-8'),
    }),
    route({
      method: 'GET',
      path: '/redoc',
      summary: 'ReDoc',
      tags: ['Docs'],
      errorStyle: 'fastapi',
      scope: 'public',
      produces: 'text/html',
      handler: async () => rawReply(200, redocPage('/openapi.json'), 'text/html; charset=utf-8'),
    }),
    route({
      method: 'GET',
      path: '/docs/assets/{name}',
      summary: 'Swagger UI and ReDoc static files',
      tags: ['Docs'],
      errorStyle: 'fastapi',
      scope: 'public',
      params: z.object({ name: z.string() }),
      produces: [...new Set(Object.values(DOCS_ASSETS).map((a) => a.type))],
      responses: { 404: 'No such asset' },
      handler: async (req, ctx) => {
        const asset = await readDocsAsset(req.params.name, ctx.config.DOCS_ASSETS_DIR);
        if (!asset) throw new NotFoundError(`No such asset: ${req.params.name}`);
        return rawReply(200, asset.body, asset.type, { 'cache-control': 'public, max-age=86400' });
      },
    }),
  ];
}
