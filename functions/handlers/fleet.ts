import { httpEntry } from '../core/lambda.js';
import { fleetNodeRoutes } from '../fleet/routes.js';

export const handler = httpEntry(fleetNodeRoutes());
