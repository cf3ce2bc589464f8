import type { EventHandler } from './core/events.js';

/** Every event type the workers handle. Areas register their handlers here. */
export const eventHandlers: Record<string, EventHandler> = {};

// Orchestrator: reconcile, nodes.sweep.
import { orchestratorEventHandlers } from './orchestrator/events.js';
Object.assign(eventHandlers, orchestratorEventHandlers);
