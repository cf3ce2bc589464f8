import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import type { AppEvent, AreaEventHandlers, AreaEvents } from '../core/events.js';
import { getNode, isOnline } from '../nodes/nodes.js';
import { activeRuns, getRun, parseInstanceId } from './model.js';
import { deliver, deliverEvent } from './notify.js';
import { repairJobs } from './repair.js';
import { endAttempt, fireJob, launchRun, nodeLostOutcome } from './runs.js';
import { retryScheduleName } from './schedules.js';
import { removeStrayRunContainers, STRAY_GRACE_MS } from './strays.js';

/**
 * Event types training consumes. All idempotent (SQS delivers at least once).
 *
 *   job.fire                {job_id, slot?}        the job's schedule (no slot), POST /jobs without
 *                                                  schedule and POST /retry (explicit slot)
 *   job.launch              {job_id, run, via?}    a retry after its backoff, a run waiting for a node
 *   jobs.repair             {}                     the repair sweep (the minute schedule runs it every 5th minute)
 *   agent.container.exited  {nodeId, instanceId, kind, exitCode, logTail}   re-emitted by the agent routes
 *   command.completed       {commandType, status, instanceId, nodeId, error?}   a refused container.start
 *   node.offline            {nodeId}               the fleet's sweep: runs there are lost
 *   node.online             {nodeId}               back: containers of runs that ended meanwhile go
 *   training.strays         {nodeIds}              the node sweep, every fifth minute: online nodes
 *                                                  listing run containers; those of ended runs go
 *   webhook.deliver         {url, format, payload, attempt, delivery_id}
 */

export const jobFire = z.object({ job_id: z.string(), slot: z.iso.datetime().optional() });
export const jobLaunch = z.object({ job_id: z.string(), run: z.string(), via: z.string().optional() });
export const jobsRepair = z.looseObject({});
export const trainingStrays = z.object({ nodeIds: z.array(z.string()).max(500) });

export const trainingEvents = {
  'job.fire': jobFire,
  'job.launch': jobLaunch,
  'jobs.repair': jobsRepair,
  'training.strays': trainingStrays,
  'webhook.deliver': deliverEvent,
} satisfies AreaEvents;

declare module '../core/events.js' {
  interface AppEventSchemas {
    'job.fire': typeof jobFire;
    'job.launch': typeof jobLaunch;
    'jobs.repair': typeof jobsRepair;
    'training.strays': typeof trainingStrays;
    'webhook.deliver': typeof deliverEvent;
  }
}

async function onExited(e: AppEvent<'agent.container.exited'>, ctx: AppContext): Promise<void> {
  if (e.kind !== 'run') return;
  const ref = parseInstanceId(e.instanceId);
  if (!ref) return;
  const run = await getRun(ctx, ref.jobId, ref.slot, ref.attempt);
  // Only the node it was started on speaks for it; a repeat finds it closed.
  if (!run || run.nodeId !== e.nodeId) return;
  await endAttempt(ctx, run, {
    exitCode: e.exitCode,
    logTail: e.logTail,
    ...(e.exitCode === null ? { reason: 'exit code unknown' } : {}),
  });
}

async function onCommandCompleted(e: AppEvent<'command.completed'>, ctx: AppContext): Promise<void> {
  if (e.commandType !== 'container.start' || e.status !== 'failed' || !e.instanceId) return;
  const ref = parseInstanceId(e.instanceId);
  if (!ref) return;
  const run = await getRun(ctx, ref.jobId, ref.slot, ref.attempt);
  if (!run || run.nodeId !== e.nodeId) return;
  await endAttempt(ctx, run, {
    exitCode: null,
    logTail: '',
    reason: `container.start failed on node ${e.nodeId}: ${e.error ?? 'no reason given'}`,
  });
}

async function onNodeOffline(e: AppEvent<'node.offline'>, ctx: AppContext): Promise<void> {
  for (const run of await activeRuns(ctx, e.nodeId)) {
    await endAttempt(ctx, run, await nodeLostOutcome(ctx, e.nodeId));
  }
}

/** The migration service saw the rented node's instance exited after a spot reclaim. */
async function onInstanceReclaimed(e: AppEvent<'cloud.instance.reclaimed'>, ctx: AppContext): Promise<void> {
  for (const run of await activeRuns(ctx, e.nodeId)) {
    await endAttempt(ctx, run, {
      exitCode: null,
      logTail: '',
      reason: `the instance ${e.instanceId} of rented node ${e.nodeId} was reclaimed (spot)`,
      preempted: true,
    });
  }
}

async function onNodeOnline(e: AppEvent<'node.online'>, ctx: AppContext): Promise<void> {
  const node = await getNode(ctx, e.nodeId);
  // Its first heartbeat back is stored: what it lists of runs closed while it was away is stray.
  if (node) await removeStrayRunContainers(ctx, node, 0);
}

export const trainingEventHandlers: AreaEventHandlers = {
  'job.fire': async (e, ctx) => {
    await fireJob(ctx, e.job_id, e.slot);
  },
  'job.launch': async (e, ctx) => {
    const outcome = await launchRun(ctx, e.job_id, e.run);
    // A one-time retry schedule has done its work once the run is on its way (or moot).
    if (e.via === 'schedule' && outcome !== 'early') await ctx.scheduler.delete(retryScheduleName(e.job_id));
  },
  'jobs.repair': async (_event, ctx) => {
    const report = await repairJobs(ctx);
    ctx.logger.info('training repair sweep', { ...report });
  },
  'training.strays': async (e, ctx) => {
    for (const nodeId of e.nodeIds) {
      const node = await getNode(ctx, nodeId);
      if (node && isOnline(node, ctx)) await removeStrayRunContainers(ctx, node, STRAY_GRACE_MS);
    }
  },
  'agent.container.exited': onExited,
  'command.completed': onCommandCompleted,
  'node.offline': onNodeOffline,
  'cloud.instance.reclaimed': onInstanceReclaimed,
  'node.online': onNodeOnline,
  'webhook.deliver': async (e, ctx) => {
    await deliver(ctx, e);
  },
};
