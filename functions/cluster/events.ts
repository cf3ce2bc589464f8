import * as z from 'zod';
import type { AreaEventHandlers, AreaEvents } from '../core/events.js';
import { onCommandCompleted, onTaskFinished, onTaskProgress } from './lifecycle.js';
import { runPlacement } from './placement.js';

/**
 * One placement pass: produced here on submit, finish, cancel confirm and model changes, and by
 * the minute schedule (`sample`: also record the fleet sample of the minute; functions/minute.ts).
 */
export const placementRun = z.object({
  reason: z.string().optional(),
  requestedAt: z.number().optional(),
  sample: z.boolean().optional(),
});

/** A rebalance that changes placements has begun (for the Cluster Manager's `/ws` stream). */
export const rebalanceStarted = z.object({
  rebalanceId: z.string(),
  strategy: z.string(),
  affectedWorkers: z.array(z.string()),
  operations: z.number().int().nonnegative(),
});

export const clusterEvents = {
  'placement.run': placementRun,
  'cluster.rebalance.started': rebalanceStarted,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    'placement.run': typeof placementRun;
    'cluster.rebalance.started': typeof rebalanceStarted;
  }
}

/**
 * Event types the task queue consumes. All idempotent (SQS delivers at least once): every
 * change is a conditional write on the task's status and node.
 *
 *   placement.run          see above
 *   agent.task.progress    re-emitted agent events (fleet agent routes)
 *   agent.task.finished
 *   node.online / offline  the fleet's node signals: capacity changed, tasks to requeue
 *   command.completed      a task.run the agent refused fails its task
 */
export const clusterEventHandlers: AreaEventHandlers = {
  'placement.run': async (event, ctx) => {
    await runPlacement(ctx, {
      ...(event.requestedAt !== undefined ? { requestedAt: event.requestedAt } : {}),
      sample: event.sample === true,
    });
  },
  'agent.task.progress': onTaskProgress,
  'agent.task.finished': onTaskFinished,
  'node.online': async (event, ctx) => void (await runPlacement(ctx, { include: [event.nodeId] })),
  'node.offline': async (event, ctx) => void (await runPlacement(ctx, { include: [event.nodeId] })),
  'command.completed': onCommandCompleted,
};
