import type { TableRoute } from './core/route.js';
import { ROUTE_GROUP_DEFS } from './groups/index.js';

/**
 * The route table: the union of the route groups (functions/groups/). The CDK stack, the local
 * runtime and /openapi.json are all generated from it.
 */
export const routes: TableRoute[] = ROUTE_GROUP_DEFS.flatMap((g) => g.routes);

export const routesOfGroup = (group: TableRoute['group']) => routes.filter((r) => r.group === group);
