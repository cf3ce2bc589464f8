/**
 * The control plane's every-minute schedule: one firing, one invocation, three safety nets in
 * turn (the node sweep with its full reconcile, the task placement run, the live push), and on
 * every 5th minute the training repair sweep, on every NOVITA_MIGRATION_INTERVAL_MINUTES-th the
 * Novita spot migration. Each schedule costs a Scheduler invocation and a Lambda invocation per
 * firing whatever the fleet's size; one schedule costs the least, and it invokes the events
 * function directly (no SQS message: the send, receive and delete were a third of its cost).
 * The old event types (`nodes.sweep`, `placement.run`, `ws.push`, `jobs.repair`,
 * `novita.migration.schedule`) keep their handlers for other producers.
 */
import * as z from 'zod';
import type { AppContext } from './core/context.js';
import type { AreaEventHandlers, AreaEvents } from './core/events.js';
import type { ScheduleSpec } from './ports/scheduler.js';
import { runPlacement } from './cluster/placement.js';
import { sweepNodes } from './orchestrator/events.js';
import { anyLiveConnection } from './realtime/connections.js';
import { pushPeriodic } from './realtime/session.js';
import { runNovitaSchedule } from './novita/events.js';
import { repairJobs } from './training/repair.js';

export const MINUTE_SCHEDULE = 'minute';

export const MINUTE_SCHEDULES: ScheduleSpec[] = [
  {
    name: MINUTE_SCHEDULE,
    expression: 'rate(1 minute)',
    payload: JSON.stringify({ type: 'minute.tick' }),
    direct: true,
    description:
      'Marks silent nodes offline and reconciles every image; places queued tasks and requeues those of offline nodes; pushes /ws/metrics and /ws/doctor frames; every 5th minute repairs training schedules and runs, every 15th migrates reclaimed Novita spot instances',
  },
];

/** Schedules the minute schedule replaced: the local runtime deletes them from a kept data folder. */
export const RETIRED_SCHEDULES = [
  'nodes-sweep',
  'placement-run',
  'live-push',
  'training-repair',
  'novita-spot-migration',
] as const;

/** Work the tick runs only on some minutes: on those whose number since the epoch divides by `every`. */
export interface MinutePart {
  name: 'training-repair' | 'novita-spot-migration';
  every: (ctx: Pick<AppContext, 'config'>) => number;
  run: (ctx: AppContext) => Promise<void>;
}

export const MINUTE_PARTS: MinutePart[] = [
  {
    name: 'training-repair',
    every: () => 5,
    run: async (ctx) => {
      const report = await repairJobs(ctx);
      ctx.logger.info('training repair sweep', { ...report });
    },
  },
  {
    name: 'novita-spot-migration',
    every: (ctx) => ctx.config.NOVITA_MIGRATION_INTERVAL_MINUTES,
    run: runNovitaSchedule,
  },
];

/** The parts due at `at` (ms): by the firing's minute, so a redelivery within it runs them again (each is idempotent). */
export function duePartsAt(ctx: Pick<AppContext, 'config'>, at: number): MinutePart[] {
  const minute = Math.floor(at / 60_000);
  return MINUTE_PARTS.filter((p) => minute % p.every(ctx) === 0);
}

/** `at`: the firing's time in ms (tests and the cost model name one); a schedule's firing leaves it out. */
export const minuteTick = z.looseObject({ at: z.number().int().nonnegative().optional() });
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
  /** The parts due this minute, each 'done' or 'failed'. */
  parts: Partial<Record<MinutePart['name'], 'done' | 'failed'>>;
}

/**
 * One minute's work. Each part runs even when one before it failed; a failed sweep or placement
 * then fails the invocation (Lambda retries it, then the dead-letter queue; every part is
 * idempotent), as its own schedule did.
 * The push never throws, as before.
 */
export async function runMinute(ctx: AppContext, at = ctx.now()): Promise<MinuteReport> {
  const failures: string[] = [];
  const report: MinuteReport = { sweep: 'done', placement: 'done', push: 'skipped', parts: {} };
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
  for (const part of duePartsAt(ctx, at)) {
    try {
      await part.run(ctx);
      report.parts[part.name] = 'done';
    } catch (error) {
      report.parts[part.name] = 'failed';
      failures.push(part.name);
      ctx.logger.error(`minute: ${part.name} failed`, { error: error as Error });
    }
  }
  if (failures.length) throw new Error(`minute: ${failures.join(' and ')} failed`);
  return report;
}

export const minuteEventHandlers: AreaEventHandlers = {
  'minute.tick': async (event, ctx) => void (await runMinute(ctx, event.at)),
};
