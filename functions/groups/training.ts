import { defineRouteGroup } from '../core/route-group.js';
import { trainingRoutes } from '../training/routes.js';
import { checkpointRoutes } from '../training/checkpoint-routes.js';

/** The Training Job Orchestrator API. */
export const group = defineRouteGroup('training', [...trainingRoutes(), ...checkpointRoutes()]);
export const handler = group.handler;
