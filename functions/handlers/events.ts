import { eventsEntry } from '../core/lambda.js';
import { eventHandlers } from '../event-handlers.js';

/** Consumer of the events queue (schedule firings, reconcile requests, agent results). */
export const handler = eventsEntry(eventHandlers);
