import type * as z from 'zod';
import type { AppEventSchemas, AreaEventHandlers, EventHandler } from './core/events.js';
import { clusterEventHandlers, clusterEvents } from './cluster/events.js';
import { fleetEvents } from './nodes/events.js';
import { maintenanceEventHandlers, maintenanceEvents } from './commander/maintenance/maintenance.js';
import { novitaEventHandlers, novitaEvents } from './novita/events.js';
import { orchestratorEventHandlers, orchestratorEvents } from './orchestrator/events.js';
import { realtimeEventHandlers, realtimeEvents } from './realtime/events.js';
import { trainingEventHandlers, trainingEvents } from './training/events.js';
import { minuteEventHandlers, minuteEvents } from './minute.js';

/**
 * Every internal event's schema, joined from the areas that declare them; the compiler fails
 * when a type declared in AppEventSchemas has no schema here.
 */
export const EVENT_SCHEMAS = {
  ...fleetEvents,
  ...orchestratorEvents,
  ...clusterEvents,
  ...trainingEvents,
  ...novitaEvents,
  ...maintenanceEvents,
  ...realtimeEvents,
  ...minuteEvents,
} satisfies { [T in keyof AppEventSchemas]: AppEventSchemas[T] };

/** Every event type the workers handle. Areas register their handlers here. */
export const eventHandlers: Record<string, EventHandler> = {};

/**
 * Adds an area's handlers; a type another area handles already runs both, in registration order.
 * Each message is parsed by its type's schema first: a malformed one can never succeed, so it is
 * logged and dropped instead of going round to the dead-letter queue.
 */
const chains = new Map<string, EventHandler[]>();

function register(handlers: AreaEventHandlers): void {
  for (const [type, handler] of Object.entries(handlers) as [keyof AppEventSchemas, EventHandler][]) {
    const chain = chains.get(type);
    if (chain) {
      chain.push(handler);
      continue;
    }
    const list = [handler];
    chains.set(type, list);
    const schema: z.ZodType = EVENT_SCHEMAS[type];
    // Parsed once per message, whichever areas handle the type.
    eventHandlers[type] = async (event, ctx) => {
      const fields = schema.safeParse(event);
      if (!fields.success) {
        ctx.logger.error('dropping malformed event', { type, issues: fields.error.issues });
        return;
      }
      const parsed = { ...(fields.data as object), type };
      for (const h of list) await h(parsed, ctx);
    };
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
// The minute schedule: the node sweep, the placement safety net and the live push in one invocation.
register(minuteEventHandlers);
