import { defineRouteGroup } from '../core/route-group.js';
import { agentRoutes } from '../agent-api/routes.js';
import { installAgentRoutes } from '../commander/install-routes.js';
import { checkpointAgentRoutes } from '../training/checkpoint-routes.js';

/** What node agents call: registration, heartbeats, command polls and results, events, host installs' logins and steps. */
export const group = defineRouteGroup('agent', [
  ...agentRoutes(),
  ...installAgentRoutes(),
  ...checkpointAgentRoutes(),
]);
export const handler = group.handler;
