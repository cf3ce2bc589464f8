import { defineRouteGroup } from '../core/route-group.js';
import { clusterRoutes } from '../cluster/routes.js';

/** The Cluster Manager API over the shared task queue. */
export const group = defineRouteGroup('cluster', clusterRoutes());
export const handler = group.handler;
