import { httpEntry } from '../core/lambda.js';
import { clusterRoutes } from '../cluster/routes.js';

export const handler = httpEntry(clusterRoutes());
