import { defineRouteGroup } from '../core/route-group.js';
import { orchestratorRoutes } from '../orchestrator/routes.js';

/** The NVIDIA orchestrator API: containers and the service registry over the fleet. */
export const group = defineRouteGroup('orchestrator', orchestratorRoutes());
export const handler = group.handler;
