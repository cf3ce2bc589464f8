import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { ConflictError } from '../core/errors.js';
import type { AreaEventHandlers, AreaEvents } from '../core/events.js';
import { POLL_EVENT } from './model.js';
import { pollInstance, revivePolls } from './lifecycle.js';
import { RUN_EVENT, runMigration, triggerMigration } from './migration.js';
import { SCHEDULE_EVENT } from './schedules.js';
import { sweepModelBursts } from './model-burst.js';
import { foldRetired, liveInstances } from './live-index.js';
import { WEBHOOK_EVENT, deliver, deliverEvent } from './webhooks.js';

/**
 * Event types the Novita area consumes, all idempotent:
 *
 *   novita.instance.poll        {instanceId}            one status read of a starting instance
 *   novita.migration.schedule   {}                      a spot migration run (the minute schedule runs it itself)
 *   novita.migration.run        {jobId}                 a queued migration execution
 *   novita.webhook.deliver      {url, payload, attempt, deliveryId}
 */

const byInstance = z.object({ instanceId: z.string().min(1) });
const byJob = z.object({ jobId: z.string().min(1) });
const migrationSchedule = z.looseObject({});
/** A joined instance's spot reclaim, seen by the migration service: what ran on its node moves. */
export const instanceReclaimed = z.object({ instanceId: z.string().min(1), nodeId: z.string().min(1) });
export const RECLAIMED_EVENT = 'cloud.instance.reclaimed';

export const novitaEvents = {
  [POLL_EVENT]: byInstance,
  [SCHEDULE_EVENT]: migrationSchedule,
  [RUN_EVENT]: byJob,
  [WEBHOOK_EVENT]: deliverEvent,
  [RECLAIMED_EVENT]: instanceReclaimed,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    'novita.instance.poll': typeof byInstance;
    'novita.migration.schedule': typeof migrationSchedule;
    'novita.migration.run': typeof byJob;
    'novita.webhook.deliver': typeof deliverEvent;
    'cloud.instance.reclaimed': typeof instanceReclaimed;
  }
}

/**
 * The spot migration's periodic run (the minute schedule's part, or the `novita.migration.schedule`
 * event). With no rented instance on record a migration could act on none: no execution is recorded.
 */
export async function runNovitaSchedule(ctx: AppContext): Promise<void> {
  // The instances not retired (live-index.ts), not every instance ever managed; reading them
  // finishes the retirements a crash left, before the fold (which lags an hour) could pass them.
  const managed = await liveInstances(ctx);
  const folded = await foldRetired(ctx);
  if (folded) ctx.logger.info('folded retired instances into the totals', { folded });
  if (!ctx.config.NOVITA_MIGRATION_ENABLED) return;
  const revived = await revivePolls(ctx, managed);
  if (revived) ctx.logger.info('re-queued quiet instance watches', { revived });
  await sweepModelBursts(ctx);
  // The same test the migration makes before it acts on an instance (functions/novita/migration.ts).
  if (!managed.some((m) => m.novitaInstanceId && !m.migratedTo)) return;
  try {
    await triggerMigration(ctx, { dryRun: ctx.config.NOVITA_MIGRATION_DRY_RUN, triggeredBy: 'schedule' });
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    ctx.logger.info('scheduled migration skipped: one is in progress');
  }
}

export const novitaEventHandlers: AreaEventHandlers = {
  [POLL_EVENT]: async (e, ctx) => void (await pollInstance(ctx, e.instanceId)),
  [SCHEDULE_EVENT]: async (_event, ctx) => runNovitaSchedule(ctx),
  [RUN_EVENT]: async (e, ctx) => void (await runMigration(ctx, e.jobId)),
  [WEBHOOK_EVENT]: async (e, ctx) => void (await deliver(ctx, e)),
};
