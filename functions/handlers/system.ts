import { httpEntry } from '../core/lambda.js';
import { routes } from '../routes.js';

/**
 * The system function serves its own routes and is also the `$default` route target: it answers
 * 404/405 for unknown paths and serves routes whose ids hold a raw `/` (API Gateway's `{param}`
 * never matches one). So it loads the whole table, unlike the other group entries.
 */
export const handler = httpEntry(routes);
