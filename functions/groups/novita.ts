import { defineRouteGroup } from '../core/route-group.js';
import { novitaRoutes } from '../novita/routes.js';

/** The Novita GPU Instance API: managed cloud instances, metrics, spot migration. */
export const group = defineRouteGroup('novita', novitaRoutes());
export const handler = group.handler;
