import { httpEntry } from '../core/lambda.js';
// Pulls in the whole route table until routes are declared per group: see functions/routes.ts.
import { routesOfGroup } from '../routes.js';

export const handler = httpEntry(routesOfGroup('novita'));
