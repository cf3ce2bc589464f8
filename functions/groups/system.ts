import { defineRouteGroup } from '../core/route-group.js';
import { observabilityRoutes } from '../observability/routes.js';
import { installRoutes } from '../system/install-routes.js';
import { systemRoutes } from '../system/routes.js';

const table = async () => (await import('../routes.js')).routes;

/**
 * Health, the API reference, the Prometheus scrape endpoint and the node installer; also API Gateway's `$default`
 * target, so it routes the whole table.
 */
export const group = defineRouteGroup('system', [...systemRoutes(table), ...observabilityRoutes(), ...installRoutes()], {
  fallback: table,
});
export const handler = group.handler;
