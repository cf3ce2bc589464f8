import { defineRouteGroup } from '../core/route-group.js';
import { visionRoutes } from '../vision/routes.js';

/** The Vision API: jobs on the shared task queue, and their outputs. */
export const group = defineRouteGroup('vision', visionRoutes());
export const handler = group.handler;
