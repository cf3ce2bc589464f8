import { httpEntry } from '../core/lambda.js';
import { trainingRoutes } from '../training/routes.js';

export const handler = httpEntry(trainingRoutes());
