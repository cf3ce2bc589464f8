import { defineRouteGroup } from '../core/route-group.js';
import { systemRoutes } from '../system/routes.js';

const table = async () => (await import('../routes.js')).routes;

/** Health and the API reference; also API Gateway's `$default` target, so it routes the whole table. */
export const group = defineRouteGroup('system', systemRoutes(table), { fallback: table });
export const handler = group.handler;
