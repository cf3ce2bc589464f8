/**
 * A change of an image's limits reaches its copies a page at a time. `PUT /containers/{imageId}/resources`
 * writes the limits on the image's record first (copies placed from then on get them), updates the
 * first ROLLOUT_PAGE copies by id itself and hands the rest to `resources.rollout` events, one page
 * a link, so no invocation reads or commands every copy of a global service. A copy that has the
 * limits already (started since, or updated by an earlier delivery of the same link) is not sent
 * them again; a redelivered link sends the others again, which the agent applies idempotently. The
 * image's record carries the rollout's progress (`rollout`), shown by `GET /images`.
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { keys } from '../core/keys.js';
import { dispatchCommand } from '../nodes/commands.js';
import { updateIf } from '../ports/store.js';
import { imageInstanceCounts } from './instance-counts.js';
import { imageInstancePage } from './instance-pages.js';
import { getService, setInstance, type RolloutState, type ServiceItem } from './model.js';
import { engineLimits, sameLimits } from './resources.js';

/** Copies one invocation (the request, then each link) reads and updates at most. */
export const ROLLOUT_PAGE = 50;

/** A new rollout for the image's record, replacing any under way (its links stop at their next). */
export const newRollout = (ctx: AppContext): RolloutState => ({
  id: randomUUID(),
  startedAt: new Date(ctx.now()).toISOString(),
  copies: 0,
});

export interface RolloutPage {
  /** The page's running and pending copies, each with its update's command id when one was sent. */
  copies: { instanceId: string; commandId?: string }[];
  /** Where the next link starts; absent on the last page. */
  cursor?: string;
}

/**
 * One page of the image's copies from `cursor`: each running or pending copy whose limits differ
 * from the image's is shielded (an engine without in-place update recreates it) and sent a
 * container.update (the agent runs it after a pending copy's start). Then the record's progress,
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
  for (const inst of page.instances) {
    if (inst.status !== 'running' && inst.status !== 'pending') continue;
    if (sameLimits(engineLimits(inst.resources), limits)) {
      copies.push({ instanceId: inst.instanceId });
      continue;
    }
    // Shield first: a fast agent may recreate the container before the dispatch call returns.
    await setInstance(ctx, inst.instanceId, { updatingSince: ctx.now() });
    const commandId = await dispatchCommand(
      ctx,
      inst.nodeId,
      { type: 'container.update', instanceId: inst.instanceId, ...limits },
      { instanceId: inst.instanceId },
    );
    copies.push({ instanceId: inst.instanceId, commandId });
  }
  await recordProgress(ctx, service, cursor, copies.length, page.cursor);
  if (page.cursor)
    await emit(ctx, {
      type: 'resources.rollout',
      imageId: service.imageId,
      rollout: service.rollout.id,
      cursor: page.cursor,
    });
  return { copies, ...(page.cursor ? { cursor: page.cursor } : {}) };
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
 * and pending copies less the page's (copies started since have the limits already).
 */
export async function copiesLeft(ctx: AppContext, imageId: string, page: RolloutPage): Promise<number> {
  if (!page.cursor) return 0;
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
