import { httpEntry } from '../core/lambda.js';
import { visionRoutes } from '../vision/routes.js';

export const handler = httpEntry(visionRoutes());
