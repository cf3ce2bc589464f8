import type { EventHandler } from './core/events.js';

/** Every event type the workers handle. Areas register their handlers here. */
export const eventHandlers: Record<string, EventHandler> = {};

// Orchestrator: reconcile, nodes.sweep.
import { orchestratorEventHandlers } from './orchestrator/events.js';
Object.assign(eventHandlers, orchestratorEventHandlers);

// Task queue: placement.run, agent.task.*, node.online/offline, command.completed. Chained after
// any handler already registered for a type, so both run.
import { clusterEventHandlers } from './cluster/events.js';
for (const [type, handler] of Object.entries(clusterEventHandlers)) {
  const before = eventHandlers[type];
  eventHandlers[type] = before
    ? async (event, ctx) => {
        await before(event, ctx);
        await handler(event, ctx);
      }
    : handler;
}

// Training jobs: job.fire, job.launch, jobs.repair, webhook.deliver, and their share of
// agent.container.exited, command.completed and node.offline. Chained like the task queue's.
import { trainingEventHandlers } from './training/events.js';
for (const [type, handler] of Object.entries(trainingEventHandlers)) {
  const before = eventHandlers[type];
  eventHandlers[type] = before
    ? async (event, ctx) => {
        await before(event, ctx);
        await handler(event, ctx);
      }
    : handler;
}

// Novita GPU instances: novita.instance.poll, novita.migration.schedule / .run,
// novita.webhook.deliver. Chained like the training ones.
import { novitaEventHandlers } from './novita/events.js';
for (const [type, handler] of Object.entries(novitaEventHandlers)) {
  const before = eventHandlers[type];
  eventHandlers[type] = before
    ? async (event, ctx) => {
        await before(event, ctx);
        await handler(event, ctx);
      }
    : handler;
}

// WebSocket API: the /ws/logs lines of node and container happenings, the live-push schedule and
// first frames on AWS. Chained last and never throwing, so a push never redelivers an event.
import { realtimeEventHandlers } from './realtime/events.js';
for (const [type, handler] of Object.entries(realtimeEventHandlers)) {
  const before = eventHandlers[type];
  eventHandlers[type] = before
    ? async (event, ctx) => {
        await before(event, ctx);
        await handler(event, ctx);
      }
    : handler;
}

// Fleet Commander maintenance: the daily maintenance.run (acts only while maintenance is started);
// a type of its own, nothing to chain.
import { maintenanceEventHandlers } from './fleet/maintenance.js';
Object.assign(eventHandlers, maintenanceEventHandlers);
