import { defineRouteGroup } from '../core/route-group.js';
import { trainingRoutes } from '../training/routes.js';
import { checkpointRoutes } from '../training/checkpoint-routes.js';
import { nodeRunRoutes } from '../training/node-run-routes.js';

/** The Training Job Orchestrator API, and one node's runs (`GET /api/nodes/{node_id}/runs`). */
export const group = defineRouteGroup('training', [
  ...trainingRoutes(),
  ...checkpointRoutes(),
  ...nodeRunRoutes(),
]);
export const handler = group.handler;
