import { httpEntry } from '../core/lambda.js';
import { agentRoutes } from '../fleet/agent-routes.js';

export const handler = httpEntry(agentRoutes());
