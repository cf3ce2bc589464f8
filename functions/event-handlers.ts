import type { EventHandler } from './core/events.js';
import { clusterEventHandlers } from './cluster/events.js';
import { maintenanceEventHandlers } from './fleet/maintenance.js';
import { novitaEventHandlers } from './novita/events.js';
import { orchestratorEventHandlers } from './orchestrator/events.js';
import { realtimeEventHandlers } from './realtime/events.js';
import { trainingEventHandlers } from './training/events.js';

/** Every event type the workers handle. Areas register their handlers here. */
export const eventHandlers: Record<string, EventHandler> = {};

/** Adds an area's handlers; a type another area handles already runs both, in registration order. */
function register(handlers: Record<string, EventHandler>): void {
  for (const [type, handler] of Object.entries(handlers)) {
    const before = eventHandlers[type];
    eventHandlers[type] = before
      ? async (event, ctx) => {
          await before(event, ctx);
          await handler(event, ctx);
        }
      : handler;
  }
}

// Orchestrator: reconcile, nodes.sweep.
register(orchestratorEventHandlers);
// Task queue: placement.run, agent.task.*, and their share of node.online/offline, command.completed.
register(clusterEventHandlers);
// Training jobs: job.fire, job.launch, jobs.repair, webhook.deliver, and their share of
// agent.container.exited, command.completed, node.online and node.offline.
register(trainingEventHandlers);
// Novita GPU instances: novita.instance.poll, novita.migration.schedule / .run, novita.webhook.deliver.
register(novitaEventHandlers);
// Fleet Commander maintenance: the daily maintenance.run (acts only while maintenance is started).
register(maintenanceEventHandlers);
// WebSocket API: /ws/logs lines of node and container happenings, the live push and first frames
// on AWS. Last and never throwing, so a push never makes an event redeliver.
register(realtimeEventHandlers);
