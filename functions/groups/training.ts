import { defineRouteGroup } from '../core/route-group.js';
import { trainingRoutes } from '../training/routes.js';

/** The Training Job Orchestrator API. */
export const group = defineRouteGroup('training', trainingRoutes());
export const handler = group.handler;
