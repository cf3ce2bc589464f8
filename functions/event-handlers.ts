import type { EventHandler } from './core/events.js';

/** Every event type the workers handle. Areas register their handlers here. */
export const eventHandlers: Record<string, EventHandler> = {};
