import type { EventHandler } from '../core/events.js';
import { onCommandCompleted, onTaskFinished, onTaskProgress } from './lifecycle.js';
import { runPlacement } from './placement.js';

/**
 * Event types the task queue consumes. All idempotent (SQS delivers at least once): every
 * change is a conditional write on the task's status and node.
 *
 *   placement.run          {reason, requestedAt?, sample?}  produced here on submit, finish,
 *                          cancel confirm, model changes; by the rate(1 minute) schedule
 *   agent.task.progress    re-emitted agent events (fleet agent routes)
 *   agent.task.finished
 *   node.online / offline  the fleet's node signals: capacity changed, tasks to requeue
 *   command.completed      a task.run the agent refused fails its task
 */
export const clusterEventHandlers: Record<string, EventHandler> = {
  'placement.run': async (event, ctx) => {
    await runPlacement(ctx, {
      ...(typeof event.requestedAt === 'number' ? { requestedAt: event.requestedAt } : {}),
      sample: event.sample === true,
    });
  },
  'agent.task.progress': onTaskProgress,
  'agent.task.finished': onTaskFinished,
  'node.online': async (_event, ctx) => void (await runPlacement(ctx)),
  'node.offline': async (_event, ctx) => void (await runPlacement(ctx)),
  'command.completed': onCommandCompleted,
};
