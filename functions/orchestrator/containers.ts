import type { AppContext } from '../core/context.js';
import { fleetKeys } from '../core/keys.js';
import { ConflictError, HttpError, NotFoundError, ValidationError, UpstreamError } from '../core/errors.js';
import { dispatchCommand, type CommandItem } from '../nodes/commands.js';
import { resolveNode } from '../nodes/nodes.js';
import { isPullFailure } from './backoff.js';
import { changeService, nextService, type StartInput } from './desired-state.js';
import {
  adjustDesired,
  getInstance,
  getService,
  instanceByContainerId,
  instanceName,
  releaseSlotsOf,
  slotsHolding,
  setInstance,
  transitionInstance,
  type InstanceItem,
} from './model.js';
import { LIVE, type InstanceStatus } from './plan.js';
import { reconcile, type Placed } from './reconciler.js';
import { instanceEndpointsDown } from './registry.js';
import type { InstanceResources } from './resources.js';
import { copiesLeft, newRollout, rolloutPage } from './rollout.js';
import { failures, settle } from '../nodes/settle.js';
import { engineStatus, portsView } from './views.js';
import { allRefused, startRefused } from './observation.js';

/** The Containers API's use cases: start, stop, delete, restart copies of an image, change their limits. */

async function nodeIdFor(
  ctx: AppContext,
  nodeRef: string | undefined,
  loc: (string | number)[],
): Promise<string | undefined> {
  if (nodeRef === undefined) return undefined;
  const node = await resolveNode(ctx, nodeRef);
  if (!node) throw new ValidationError([{ loc, msg: `Unknown node: ${nodeRef}`, type: 'value_error' }]);
  return node.nodeId;
}

/**
 * Every copy a start asked for failed. A start the node refused for what was asked (a disk limit it
 * cannot enforce, its own policy) keeps nothing: its copies gave their places back (422). An image
 * no node could pull is the request's to fix (422); any other failure is the engine's (502), and
 * then the desired count stays: the copies are retried with backoff (orchestrator/backoff.ts) until
 * the image is scaled down or deleted.
 */
async function startFailed(ctx: AppContext, imageId: string, commands: CommandItem[]): Promise<HttpError> {
  const errors = failures(commands).map((f) => f.error);
  const refused = allRefused(commands);
  if (refused) {
    // The result's applier does the same; doing it here too means the answer says where things ended.
    for (const c of commands.filter((c) => c.status === 'failed' && c.instanceId))
      await startRefused(ctx, c.instanceId!, c.error ?? 'start refused');
  }
  const desired = (await getService(ctx, imageId))?.desiredCount ?? 0;
  if (refused) {
    return new HttpError(
      422,
      `The node refused to start ${imageId}: ${errors.join('; ')}. Nothing was kept: the desired count is ${desired}`,
      'START_REFUSED',
      { reason: 'start_refused', desired_count: desired },
    );
  }
  const pull = errors.every(isPullFailure);
  return new HttpError(
    pull ? 422 : 502,
    `Failed to start ${imageId}: ${errors.join('; ')}. The desired count stays ${desired}: the copies are retried with backoff (10 s doubling to 5 min); scale the image down or delete it to stop them`,
    pull ? 'IMAGE_PULL_FAILED' : 'START_FAILED',
    { reason: pull ? 'image_pull_failed' : 'start_failed', desired_count: desired },
  );
}

/** POST /containers/{imageId}/start: `count` more copies. */
export async function startContainers(ctx: AppContext, imageId: string, input: StartInput) {
  const nodeId = await nodeIdFor(ctx, input.node_id, ['body', 'node_id']);
  await changeService(ctx, imageId, async (current) => ({
    next: nextService(ctx, imageId, current, (current?.desiredCount ?? 0) + input.count, input, nodeId),
    wanted: input.count,
  }));
  const placed = (await reconcile(ctx, { imageId })).placed.filter((p) => p.imageId === imageId);
  const started = placed.map((p) => p.instanceId);
  return settle(
    ctx,
    placed.map((p) => p.commandId),
    async (commands) => {
      const failed = failures(commands);
      const ok = started.filter((id) => !failed.some((f) => f.id === id));
      if (!ok.length && failed.length) throw await startFailed(ctx, imageId, commands);
      return {
        started: ok,
        ...(failed.length ? { failed } : {}),
        ...(input.count > placed.length ? { pending_placement: input.count - placed.length } : {}),
      };
    },
    { started },
  );
}

/**
 * Up to `want` of the image's live copies, a page of its instances at a time: a start that finds
 * them reads about that many copies, not every one of a global service.
 */
async function liveCopies(ctx: AppContext, imageId: string, want: number): Promise<InstanceItem[]> {
  const live: InstanceItem[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.store.query<InstanceItem>(fleetKeys.imageInstancesPk(imageId), {
      index: 'gsi1',
      limit: want + 1,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    live.push(...page.items.filter((i) => LIVE.has(i.status)));
    cursor = page.cursor;
  } while (cursor !== undefined && live.length < want);
  return live;
}

/** POST /start/container: at least `count` copies of the image; reuse one when they already run. */
export async function startOrReuse(ctx: AppContext, imageId: string, input: StartInput) {
  const nodeId = await nodeIdFor(ctx, input.node_id, ['body', 'node_id']);
  let reuse: InstanceItem | undefined;
  await changeService(ctx, imageId, async (current) => {
    // Enough found (or every one read): `wanted` below is exact when it counts.
    const live = current ? await liveCopies(ctx, imageId, input.count) : [];
    if (current && live.length >= input.count) {
      reuse = live.find((i) => i.status === 'running') ?? live[0]!;
      return undefined;
    }
    return {
      next: nextService(
        ctx,
        imageId,
        current,
        Math.max(current?.desiredCount ?? 0, input.count),
        input,
        nodeId,
      ),
      wanted: input.count - live.length,
    };
  });
  if (reuse) {
    const r = reuse;
    return {
      ok: true as const,
      action: 'reused' as const,
      image: imageId,
      container_id: r.instanceId,
      name: r.name,
      status: engineStatus(r.status),
      ports: portsView(r.ports),
    };
  }
  const placed = (await reconcile(ctx, { imageId })).placed.filter((p) => p.imageId === imageId);
  const first: Placed | undefined = placed[0];
  if (!first) throw new ConflictError(`Cannot start ${imageId}: no copy could be placed`, 'NO_CAPACITY');
  return settle(
    ctx,
    placed.map((p) => p.commandId),
    async (commands) => {
      const mine = commands.find((c) => c.commandId === first.commandId);
      if (mine?.status === 'failed') throw await startFailed(ctx, imageId, [mine]);
      const inst = (await getInstance(ctx, first.instanceId))!;
      return {
        ok: true as const,
        action: 'created' as const,
        image: imageId,
        container_id: inst.instanceId,
        name: inst.name,
        status: engineStatus(inst.status),
        ports: portsView(inst.ports),
      };
    },
    {
      ok: true as const,
      action: 'created' as const,
      image: imageId,
      container_id: first.instanceId,
      name: instanceName(first.instanceId),
    },
  );
}

// ---------------------------------------------------------------- stopping, deleting

/** Whether the copy holds a place of its service (a replaced or surplus copy holds none). */
const holdsSlot = async (ctx: AppContext, inst: InstanceItem) => (await slotsHolding(ctx, inst)).length > 0;

/**
 * The slot goes with the user's intent: one copy fewer wanted, this one's ordinal free. `held` is
 * read before the copy is locked: once it is `stopping`, a reconciler that sees another stop's
 * lower desired count may release this copy's slot as the surplus, and reading it then would
 * lose this stop's own decrement.
 */
async function giveUpSlot(ctx: AppContext, inst: InstanceItem, held: boolean): Promise<void> {
  if (!held) return;
  // Desired first: a reconciler in between sees one slot too many and releases the locked one.
  await adjustDesired(ctx, inst.imageId, -1);
  await releaseSlotsOf(ctx, inst);
}

const STOPPABLE: InstanceStatus[] = ['pending', 'running', 'exited', 'failed', 'orphaned'];

/** POST /containers/{imageId}/stop */
/** The longest stop grace a request may ask for; the agent's engine call waits this plus its margin. */
export const STOP_TIMEOUT_MAX_SECONDS = 600;

export async function stopInstance(
  ctx: AppContext,
  imageId: string,
  instanceId: string,
  timeoutSeconds = 10,
) {
  let inst = await getInstance(ctx, instanceId);
  if (!inst || inst.imageId !== imageId || inst.status === 'removed') {
    throw new NotFoundError(`Instance ${instanceId} not found for image ${imageId}`);
  }
  if (inst.status === 'stopped') return { stopped: true };
  if (inst.status === 'removing') throw new ConflictError(`Instance ${instanceId} is being removed`);
  if (inst.status !== 'stopping') {
    const held = await holdsSlot(ctx, inst);
    const was = inst.status;
    const locked = await transitionInstance(
      ctx,
      instanceId,
      // The status it was read in first: one write unless it moved meanwhile.
      [was, ...STOPPABLE.filter((s) => s !== was)],
      'stopping',
      held ? { countedOff: true } : {},
    );
    if (!locked) throw new ConflictError(`Instance ${instanceId} changed concurrently; retry`);
    inst = locked;
    await giveUpSlot(ctx, inst, held);
    await instanceEndpointsDown(ctx, inst);
    const commandId = await dispatchCommand(
      ctx,
      inst.nodeId,
      { type: 'container.stop', instanceId, timeoutSeconds },
      { instanceId },
    );
    inst =
      (await transitionInstance(ctx, instanceId, ['stopping'], 'stopping', { lastCommandId: commandId })) ??
      inst;
  }
  return settle(ctx, [inst.lastCommandId!], async (commands) => {
    const failed = failures(commands);
    if (failed.length) throw new UpstreamError(`Failed to stop ${instanceId}: ${failed[0]!.error}`);
    return { stopped: true };
  });
}

/** By instance id, by name (`container-<id>`), or by the engine's container id (12+ characters of it). */
export async function findContainer(ctx: AppContext, idOrName: string): Promise<InstanceItem | undefined> {
  const direct = await getInstance(ctx, idOrName);
  if (direct) return direct;
  const named = /^container-([0-9a-f]+)$/.exec(idOrName);
  if (named) {
    const byName = await getInstance(ctx, named[1]!);
    if (byName) return byName;
  }
  return instanceByContainerId(ctx, idOrName);
}

/** DELETE /containers/{idOrName}?force= */
export async function deleteContainer(ctx: AppContext, idOrName: string, force: boolean) {
  const inst = await findContainer(ctx, idOrName);
  if (!inst || inst.status === 'removed') throw new NotFoundError(`Container ${idOrName} not found`);
  if (!force && (inst.status === 'pending' || inst.status === 'running' || inst.status === 'stopping')) {
    throw new ConflictError(`Container ${inst.name} is running: stop it first or delete with force=true`);
  }
  const held = await holdsSlot(ctx, inst);
  const locked = await transitionInstance(
    ctx,
    inst.instanceId,
    [inst.status],
    'removing',
    held ? { countedOff: true } : {},
  );
  if (!locked) throw new ConflictError(`Container ${inst.name} changed concurrently; retry`);
  await giveUpSlot(ctx, locked, held);
  await instanceEndpointsDown(ctx, locked);
  const commandId = await dispatchCommand(
    ctx,
    inst.nodeId,
    { type: 'container.remove', instanceId: inst.instanceId, force },
    { instanceId: inst.instanceId },
  );
  await transitionInstance(ctx, inst.instanceId, ['removing'], 'removing', { lastCommandId: commandId });
  return settle(
    ctx,
    [commandId],
    async (commands) => {
      const failed = failures(commands);
      if (failed.length) throw new UpstreamError(`Failed to delete ${inst.name}: ${failed[0]!.error}`);
      return { deleted: true, container_id: inst.instanceId, name: inst.name };
    },
    { container_id: inst.instanceId, name: inst.name },
  );
}

/** Restarts a running copy in place (same container, same slot); heartbeats meanwhile are not a death. */
export async function restartContainer(ctx: AppContext, idOrName: string) {
  const inst = await findContainer(ctx, idOrName);
  if (!inst || inst.status === 'removed') throw new NotFoundError(`Container ${idOrName} not found`);
  if (inst.status !== 'running')
    throw new ConflictError(
      `Container ${inst.name} is ${engineStatus(inst.status)}: only a running container restarts`,
    );
  await setInstance(ctx, inst.instanceId, { updatingSince: ctx.now() });
  const commandId = await dispatchCommand(
    ctx,
    inst.nodeId,
    { type: 'container.restart', instanceId: inst.instanceId, timeoutSeconds: 10 },
    { instanceId: inst.instanceId },
  );
  return settle(
    ctx,
    [commandId],
    async (commands) => {
      const failed = failures(commands);
      if (failed.length) throw new UpstreamError(`Failed to restart ${inst.name}: ${failed[0]!.error}`);
      return { restarted: true as const, container_id: inst.instanceId, name: inst.name };
    },
    { container_id: inst.instanceId, name: inst.name },
  );
}

// ---------------------------------------------------------------- resources

/**
 * PUT /containers/{imageId}/resources: new limits for the image, then for its copies a page at a
 * time (rollout.ts): this request updates the first page and answers for it; `pending` copies are
 * left to the rollout's background links.
 */
export async function updateResources(ctx: AppContext, imageId: string, changes: InstanceResources) {
  const saved = await changeService(ctx, imageId, async (current) => {
    if (!current) throw new NotFoundError(`Image ${imageId} not found`);
    const resources = { ...current.resources, ...changes };
    const next = {
      ...current,
      resources,
      rollout: newRollout(ctx),
      updatedAt: new Date(ctx.now()).toISOString(),
    };
    // Limits only: nothing new is placed, so nothing to check against capacity.
    return { next, wanted: 0 };
  });
  const service = saved!;
  const page = await rolloutPage(ctx, { ...service, rollout: service.rollout! }, undefined);
  const pending = await copiesLeft(ctx, imageId, page);
  const all = page.copies.map((c) => c.instanceId);
  return settle(
    ctx,
    page.copies.flatMap((c) => (c.commandId ? [c.commandId] : [])),
    async (commands) => {
      const failed = failures(commands);
      return {
        updated: all.filter((id) => !failed.some((f) => f.id === id)),
        ...(failed.length ? { failed } : {}),
        pending,
      };
    },
    { updated: all, pending },
  );
}
