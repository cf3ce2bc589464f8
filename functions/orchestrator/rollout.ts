/**
 * A change of an image's limits reaches its copies a page at a time. `PUT /containers/{imageId}/resources`
 * writes the limits on the image's record first (copies placed from then on get them), updates the
 * first ROLLOUT_PAGE copies by id itself and hands the rest to `resources.rollout` events, one page
 * a link, so no invocation reads or commands every copy of a global service. A copy still
 * starting gets its update once it runs (`resources.rollout.copy`, a look every few seconds). A
 * copy that has the limits already (started since, or updated by an earlier delivery of the same
 * link) is not sent them again; a redelivered link sends the others again, which the agent applies
 * idempotently. The image's record carries the rollout's progress (`rollout`), in `GET /images`.
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { keys } from '../core/keys.js';
import { dispatchCommand } from '../nodes/commands.js';
import { updateIf } from '../ports/store.js';
import { imageInstanceCounts } from './instance-counts.js';
import { imageInstancePage } from './instance-pages.js';
import {
  getInstance,
  getService,
  setInstance,
  type InstanceItem,
  type RolloutState,
  type ServiceItem,
} from './model.js';
import { engineLimits, sameLimits, type EngineLimits } from './resources.js';

/** Copies one invocation (the request, then each link) reads and updates at most. */
export const ROLLOUT_PAGE = 50;

/** A new rollout for the image's record, replacing any under way (its links stop at their next). */
export const newRollout = (ctx: AppContext): RolloutState => ({
  id: randomUUID(),
  startedAt: new Date(ctx.now()).toISOString(),
  copies: 0,
});

/** Seconds between looks at a pending copy whose limits wait for its start, and how many looks. */
export const PENDING_LOOK_SECONDS = 5;
const PENDING_LOOKS = 60;

export interface RolloutPage {
  /** The page's running copies, each with its update's command id when one was sent. */
  copies: { instanceId: string; commandId?: string }[];
  /** Pending copies with the old limits: each sent its update once started (`resources.rollout.copy`). */
  deferred: string[];
  /** Where the next link starts; absent on the last page. */
  cursor?: string;
}

/** Shields the copy (an engine without in-place update recreates it) and sends it the limits. */
async function sendUpdate(ctx: AppContext, inst: InstanceItem, limits: EngineLimits): Promise<string> {
  // Shield first: a fast agent may recreate the container before the dispatch call returns.
  await setInstance(ctx, inst.instanceId, { updatingSince: ctx.now() });
  return dispatchCommand(
    ctx,
    inst.nodeId,
    { type: 'container.update', instanceId: inst.instanceId, ...limits },
    { instanceId: inst.instanceId },
  );
}

/**
 * One page of the image's copies from `cursor`: each running copy whose limits differ from the
 * image's is sent them; a pending one (placed before the change, its start on the way: an update
 * could reach the agent before it) is looked at again until it runs. Then the record's progress,
 * then the next link: a crash before the link is sent fails the event, and its redelivery resumes.
 */
export async function rolloutPage(
  ctx: AppContext,
  service: ServiceItem & { rollout: RolloutState },
  cursor: string | undefined,
): Promise<RolloutPage> {
  const limits = engineLimits(service.resources);
  const page = await imageInstancePage(ctx, service.imageId, { limit: ROLLOUT_PAGE, cursor });
  const copies: RolloutPage['copies'] = [];
  const deferred: string[] = [];
  const link = { imageId: service.imageId, rollout: service.rollout.id };
  for (const inst of page.instances) {
    if (inst.status !== 'running' && inst.status !== 'pending') continue;
    if (sameLimits(engineLimits(inst.resources), limits)) copies.push({ instanceId: inst.instanceId });
    else if (inst.status === 'running')
      copies.push({ instanceId: inst.instanceId, commandId: await sendUpdate(ctx, inst, limits) });
    else {
      deferred.push(inst.instanceId);
      await emit(
        ctx,
        { type: 'resources.rollout.copy', ...link, instanceId: inst.instanceId, look: 1 },
        PENDING_LOOK_SECONDS,
      );
    }
  }
  await recordProgress(ctx, service, cursor, copies.length + deferred.length, page.cursor);
  if (page.cursor) await emit(ctx, { type: 'resources.rollout', ...link, cursor: page.cursor });
  return { copies, deferred, ...(page.cursor ? { cursor: page.cursor } : {}) };
}

/**
 * A pending copy of a rollout, looked at again: sent the limits once it runs (or after the last
 * look, when the agent runs the update after its start anyway); nothing once it has them, is gone
 * or dead, or the rollout was overtaken (the later one's pages find it).
 */
export async function rolloutCopy(
  ctx: AppContext,
  event: { imageId: string; rollout: string; instanceId: string; look: number },
): Promise<void> {
  const service = await getService(ctx, event.imageId);
  if (service?.rollout?.id !== event.rollout) return;
  const inst = await getInstance(ctx, event.instanceId);
  if (!inst || (inst.status !== 'running' && inst.status !== 'pending')) return;
  const limits = engineLimits(service.resources);
  if (sameLimits(engineLimits(inst.resources), limits)) return;
  if (inst.status === 'pending' && event.look < PENDING_LOOKS)
    await emit(ctx, { type: 'resources.rollout.copy', ...event, look: event.look + 1 }, PENDING_LOOK_SECONDS);
  else await sendUpdate(ctx, inst, limits);
}

/**
 * Adds the page's copies to the record's progress, once: only while the record still names this
 * rollout at the page's start (a redelivered link finds it past, a later change a new rollout).
 */
async function recordProgress(
  ctx: AppContext,
  read: ServiceItem,
  from: string | undefined,
  copies: number,
  next: string | undefined,
): Promise<void> {
  const k = keys.service(read.imageId);
  let service: ServiceItem | undefined = read;
  for (let attempt = 0; attempt < 3 && service; attempt++) {
    const r = service.rollout;
    if (r?.id !== read.rollout?.id || r?.cursor !== from || r?.finishedAt) return;
    const { cursor: _from, ...rest } = r!;
    const rollout: RolloutState = {
      ...rest,
      copies: rest.copies + copies,
      ...(next ? { cursor: next } : { finishedAt: new Date(ctx.now()).toISOString() }),
    };
    const on = { version: service.version ?? 1 };
    if (await updateIf(ctx.store, k.pk, k.sk, { set: { rollout } }, on)) return;
    service = await getService(ctx, read.imageId);
  }
}

/**
 * About how many live copies a rollout has left after its first page: the image's counted running
 * and pending copies less the page's running ones (copies started since have the limits already).
 */
export async function copiesLeft(ctx: AppContext, imageId: string, page: RolloutPage): Promise<number> {
  if (!page.cursor) return page.deferred.length;
  const counts = await imageInstanceCounts(ctx, imageId);
  return Math.max(0, counts.running + counts.pending - page.copies.length);
}

/** A `resources.rollout` link: the next page, while the image's record names this rollout. */
export async function rolloutLink(
  ctx: AppContext,
  event: { imageId: string; rollout: string; cursor: string },
): Promise<void> {
  const service = await getService(ctx, event.imageId);
  const rollout = service?.rollout;
  // The image is gone, or a later change started its own rollout from the first copy.
  if (!service || !rollout || rollout.id !== event.rollout) return;
  await rolloutPage(ctx, { ...service, rollout }, event.cursor);
}
