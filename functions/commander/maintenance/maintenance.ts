import * as z from 'zod';
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../core/context.js';
import { ConflictError } from '../../core/errors.js';
import type { AreaEventHandlers, AreaEvents } from '../../core/events.js';
import { maintenanceKeys } from '../../core/keys.js';
import { acquireLease, heldLease, releaseLease, type LeaseSpec } from '../../core/lease.js';
import { ConditionFailedError, putIfAbsent, type StoreItem } from '../../ports/store.js';
import { waitForCommands } from '../../nodes/commands.js';
import { startFix, type FixResult } from './fixes.js';
import { currentProblems, problemView, type FixType } from './problems.js';
import { MAINTENANCE_RUN_EVENT, nextMaintenanceRun } from './schedule.js';
import type { NodeItem } from '../../nodes/nodes.js';

/**
 * Fleet Commander maintenance over the shared model: the switch, the status, and runs. A run (the
 * daily schedule, or run-now) detects problems (maintenance-problems) and applies the automatic
 * fixes (maintenance-fixes) through the nodes' agents; one run at a time, through a lock item
 * written with attribute_not_exists.
 */

// ---------------------------------------------------------------- switch, lock, status

interface StateItem extends StoreItem {
  enabled: boolean;
  updatedAt: string;
  lastRunId?: string;
  lastRunAt?: string;
  lastRunFinishedAt?: string;
  lastRunTrigger?: 'schedule' | 'manual';
}

/** One run at a time. A run waits COMMAND_WAIT_MS at most for its fixes; a holder silent past the lease died. */
const RUN_LOCK: LeaseSpec = { key: maintenanceKeys.lock(), field: 'runId', leaseMs: 5 * 60_000 };

async function getState(ctx: AppContext): Promise<StateItem | undefined> {
  const k = maintenanceKeys.state();
  return ctx.store.get<StateItem>(k.pk, k.sk);
}

/** Sets fields of the state item, creating it (maintenance stopped) the first time. */
async function saveState(ctx: AppContext, set: Partial<StateItem>): Promise<StateItem> {
  const k = maintenanceKeys.state();
  const at = new Date(ctx.now()).toISOString();
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.store.update<StateItem>(k.pk, k.sk, { set: { ...set, updatedAt: at } });
    } catch (error) {
      if (!(error instanceof ConditionFailedError) || attempt > 0) throw error;
    }
    const item: StateItem = { ...k, enabled: false, ...set, updatedAt: at };
    if (await putIfAbsent(ctx.store, item)) return item;
    // Created meanwhile: update it.
  }
}

export async function maintenanceStatus(ctx: AppContext) {
  const [state, lock, { problems }] = await Promise.all([
    getState(ctx),
    heldLease(ctx, RUN_LOCK),
    currentProblems(ctx),
  ]);
  const enabled = state?.enabled ?? false;
  return {
    enabled,
    running: lock !== undefined,
    last_run: state?.lastRunAt ?? null,
    next_run: enabled ? nextMaintenanceRun(ctx.now()) : null,
    problems_count: problems.length,
  };
}

export async function setMaintenanceEnabled(ctx: AppContext, enabled: boolean) {
  await saveState(ctx, { enabled });
  return maintenanceStatus(ctx);
}

// ---------------------------------------------------------------- runs

/** One run: detection, then every automatic fix of an online node at once, waited for together. */
export async function runMaintenance(ctx: AppContext, trigger: 'schedule' | 'manual') {
  const runId = randomUUID();
  const startedAt = new Date(ctx.now()).toISOString();
  const holder = await acquireLease(ctx, RUN_LOCK, runId, { trigger, startedAt });
  if (holder)
    throw new ConflictError(`A maintenance run is already in progress (${holder})`, 'MAINTENANCE_RUNNING');
  try {
    const { nodes, problems } = await currentProblems(ctx);
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    const wanted = new Map<string, { node: NodeItem; fix: FixType }>();
    for (const p of problems) {
      if (p.fix) wanted.set(`${p.nodeId}#${p.fix}`, { node: byId.get(p.nodeId)!, fix: p.fix });
    }
    const started = await Promise.all(
      [...wanted.values()].map(async ({ node, fix }) => {
        try {
          return { node, fix, started: await startFix(ctx, node, fix) };
        } catch (error) {
          return { node, fix, error: error as Error };
        }
      }),
    );
    const waited = await waitForCommands(
      ctx,
      started.flatMap((s) => s.started?.commandIds ?? []),
    );
    const done = new Map(waited.done.map((c) => [c.commandId, c]));
    const fixes: FixResult[] = [];
    for (const s of started) {
      const head = { node_id: s.node.nodeId, fix_type: s.fix };
      if (!s.started) {
        fixes.push({ ...head, status: 'failed', error: s.error!.message });
        continue;
      }
      const pending = s.started.commandIds.filter((id) => !done.has(id));
      if (pending.length) {
        fixes.push({ ...head, status: 'pending', pending_commands: pending });
        continue;
      }
      try {
        fixes.push(await s.started.finish(s.started.commandIds.map((id) => done.get(id)!)));
      } catch (error) {
        fixes.push({ ...head, status: 'failed', error: (error as Error).message });
      }
    }
    const finishedAt = new Date(ctx.now()).toISOString();
    await saveState(ctx, {
      lastRunId: runId,
      lastRunAt: startedAt,
      lastRunFinishedAt: finishedAt,
      lastRunTrigger: trigger,
    });
    return {
      run_id: runId,
      trigger,
      started_at: startedAt,
      finished_at: finishedAt,
      problems: problems.map(problemView),
      fixes,
    };
  } finally {
    await releaseLease(ctx, RUN_LOCK, runId);
  }
}

/** The daily schedule's event (fleet-maintenance). */
export const maintenanceRun = z.looseObject({});

export const maintenanceEvents = { [MAINTENANCE_RUN_EVENT]: maintenanceRun } satisfies AreaEvents;

declare module '../../core/events.js' {
  interface AppEventSchemas {
    'maintenance.run': typeof maintenanceRun;
  }
}

/** A run when maintenance is started, nothing otherwise. */
export const maintenanceEventHandlers: AreaEventHandlers = {
  [MAINTENANCE_RUN_EVENT]: async (_event, ctx) => {
    if (!(await getState(ctx))?.enabled) {
      ctx.logger.info('maintenance is stopped; scheduled run skipped');
      return;
    }
    try {
      const run = await runMaintenance(ctx, 'schedule');
      ctx.logger.info('maintenance run done', {
        runId: run.run_id,
        problems: run.problems.length,
        fixes: run.fixes.length,
      });
    } catch (error) {
      // A run-now holds the lock: that run is today's.
      if (error instanceof ConflictError)
        ctx.logger.info('maintenance run skipped: another run holds the lock');
      else throw error;
    }
  },
};
