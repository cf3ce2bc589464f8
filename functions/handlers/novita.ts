import { httpEntry } from '../core/lambda.js';
import { novitaRoutes } from '../novita/routes.js';

export const handler = httpEntry(novitaRoutes());
