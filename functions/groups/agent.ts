import { defineRouteGroup } from '../core/route-group.js';
import { agentRoutes } from '../fleet/agent-routes.js';
import { installAgentRoutes } from '../fleet/install-routes.js';
import { checkpointAgentRoutes } from '../training/checkpoint-routes.js';

/** What node agents call: registration, heartbeats, command polls and results, events, host installs' logins and steps. */
export const group = defineRouteGroup('agent', [
  ...agentRoutes(),
  ...installAgentRoutes(),
  ...checkpointAgentRoutes(),
]);
export const handler = group.handler;
