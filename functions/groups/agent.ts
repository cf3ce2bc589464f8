import { defineRouteGroup } from '../core/route-group.js';
import { agentRoutes } from '../fleet/agent-routes.js';

/** What node agents call: registration, heartbeats, command polls and results, events. */
export const group = defineRouteGroup('agent', agentRoutes());
export const handler = group.handler;
