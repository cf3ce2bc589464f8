/**
 * The control plane's every-minute schedule: one firing, one invocation, three safety nets in
 * turn (the node sweep with its full reconcile, the task placement run, the live push). Three
 * schedules cost three Scheduler invocations, three SQS messages and three Lambda invocations a
 * minute whatever the fleet's size (about $0.05 a node-month in a 10-node fleet); one costs a third.
 * The old event types (`nodes.sweep`, `placement.run`, `ws.push`) keep their handlers for other producers.
 */
import * as z from 'zod';
import type { AppContext } from './core/context.js';
import type { AreaEventHandlers, AreaEvents } from './core/events.js';
import type { ScheduleSpec } from './ports/scheduler.js';
import { runPlacement } from './cluster/placement.js';
import { sweepNodes } from './orchestrator/events.js';
import { anyLiveConnection } from './realtime/connections.js';
import { pushPeriodic } from './realtime/session.js';

export const MINUTE_SCHEDULE = 'minute';

export const MINUTE_SCHEDULES: ScheduleSpec[] = [
  {
    name: MINUTE_SCHEDULE,
    expression: 'rate(1 minute)',
    payload: JSON.stringify({ type: 'minute.tick' }),
    description:
      'Marks silent nodes offline and reconciles every image; places queued tasks and requeues those of offline nodes; pushes /ws/metrics and /ws/doctor frames',
  },
];

/** Schedules the minute schedule replaced: the local runtime deletes them from a kept data folder. */
export const RETIRED_SCHEDULES = ['nodes-sweep', 'placement-run', 'live-push'] as const;

export const minuteTick = z.looseObject({});
export const minuteEvents = { 'minute.tick': minuteTick } satisfies AreaEvents;

declare module './core/events.js' {
  interface AppEventSchemas {
    'minute.tick': typeof minuteTick;
  }
}

export interface MinuteReport {
  sweep: 'done' | 'failed';
  /**
   * Always run: besides placing and requeueing it records the minute's fleet sample, which the
   * cluster metrics history reads whether or not tasks wait.
   */
  placement: 'done' | 'failed';
  /** Skipped: no connection can be open; off Lambda the local WebSocket server's timer pushes. */
  push: 'done' | 'skipped' | 'off lambda';
}

/**
 * One minute's work. Each part runs even when one before it failed; a failed sweep or placement
 * then fails the invocation (SQS redelivers it; every part is idempotent), as its own schedule did.
 * The push never throws, as before.
 */
export async function runMinute(ctx: AppContext): Promise<MinuteReport> {
  const failures: string[] = [];
  const report: MinuteReport = { sweep: 'done', placement: 'done', push: 'skipped' };
  try {
    await sweepNodes(ctx, { reconcile: 'inline' });
  } catch (error) {
    report.sweep = 'failed';
    failures.push('node sweep');
    ctx.logger.error('minute: node sweep failed', { error: error as Error });
  }
  try {
    await runPlacement(ctx, { sample: true });
  } catch (error) {
    report.placement = 'failed';
    failures.push('placement run');
    ctx.logger.error('minute: placement run failed', { error: error as Error });
  }
  // One read in every mode (the cost model counts it); frames only where Lambda has no local timer.
  if (await anyLiveConnection(ctx).catch(() => true)) {
    if (ctx.mode !== 'lambda') report.push = 'off lambda';
    else {
      report.push = 'done';
      await pushPeriodic(ctx).catch((error: unknown) =>
        ctx.logger.warn('websocket push failed', { error: error as Error }),
      );
    }
  }
  if (failures.length) throw new Error(`minute: ${failures.join(' and ')} failed`);
  return report;
}

export const minuteEventHandlers: AreaEventHandlers = {
  'minute.tick': async (_event, ctx) => void (await runMinute(ctx)),
};
