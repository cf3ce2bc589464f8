import { httpEntry } from '../core/lambda.js';
import { orchestratorRoutes } from '../orchestrator/routes.js';

export const handler = httpEntry(orchestratorRoutes());
