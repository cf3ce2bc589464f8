import { randomBytes, randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { fleetKeys, keys } from '../core/keys.js';
import { emit } from '../core/events.js';
import { dispatchCommand } from '../nodes/commands.js';
import { ConditionFailedError, putIf, updateIf } from '../ports/store.js';
import {
  getService,
  instanceName,
  listServices,
  putInstance,
  transitionInstance,
  type InstanceItem,
  type ServiceItem,
  type SlotItem,
} from './model.js';
import { nextBackoff } from './backoff.js';
import { recountImage } from './instance-counts.js';
import { BACKING_OFF, globalCount, type PlanAction, type PlanInput, type Unplaced } from './plan.js';
import { instanceEndpointsDown } from './registry.js';
import { toReservation } from './resources.js';
import { imageState, type FleetState } from './fleet-state.js';
import { planPaged, startSpec, toPlanService } from './plan-input.js';
import { resumeStaleCopies } from './resume.js';
import { GLOBAL_ITEMS_PER_INVOCATION, reconcileGlobal, type ApplyFn, type GlobalLink } from './global.js';

export interface Placed {
  imageId: string;
  ordinal: number;
  instanceId: string;
  nodeId: string;
  commandId: string;
}

export interface ReconcileOutcome {
  placed: Placed[];
  released: number;
  retired: string[];
  orphaned: string[];
  unplaced: Unplaced[];
  /** Actions another writer got to first (their conditional write won). */
  lost: number;
}

const emptyOutcome = (): ReconcileOutcome => ({
  placed: [],
  released: 0,
  retired: [],
  orphaned: [],
  unplaced: [],
  lost: 0,
});

/** Docker-style short id: what the orchestrator API calls a container id. */
const newInstanceId = () => randomBytes(6).toString('hex');

/**
 * Plans and applies, for one image or, without `imageId`, each image in turn (never the whole
 * fleet at once: each reads its own nodes and pages of eligible ones). Safe to run concurrently
 * with itself: every write is conditional.
 */
export async function reconcile(
  ctx: AppContext,
  /** `retryNow`: a person asked for the dead copies back (a quick fix): their backoff is skipped. */
  options: { imageId?: string; retryNow?: boolean } = {},
): Promise<ReconcileOutcome> {
  const images = options.imageId ? [options.imageId] : (await listServices(ctx)).map((s) => s.imageId);
  return reconcileImages(ctx, images, options);
}

/** Reconciles each image in turn; one outcome for all. */
export async function reconcileImages(
  ctx: AppContext,
  imageIds: readonly string[],
  options: { retryNow?: boolean } = {},
): Promise<ReconcileOutcome> {
  const outcome = emptyOutcome();
  for (const imageId of new Set(imageIds)) {
    const one = await reconcileImage(ctx, imageId, options);
    outcome.placed.push(...one.placed);
    outcome.released += one.released;
    outcome.retired.push(...one.retired);
    outcome.orphaned.push(...one.orphaned);
    outcome.unplaced.push(...one.unplaced);
    outcome.lost += one.lost;
  }
  return outcome;
}

/**
 * The images the minute's reconcile covers in one invocation; the rest go on as one `reconcile`
 * event each, so an invocation's work stays bounded whatever the number of images.
 */
export const RECONCILE_IMAGES_PER_INVOCATION = 16;

/**
 * The whole fleet's reconcile (the minute's safety net, a node back online): the first
 * RECONCILE_IMAGES_PER_INVOCATION images here, the others (and every global service, which reads
 * the eligible nodes it runs on) as their own events. Reads the service list, not the nodes.
 */
export async function reconcileFanOut(ctx: AppContext): Promise<{ here: number; emitted: number }> {
  const services = await listServices(ctx);
  const here = services.filter((s) => !s.global).slice(0, RECONCILE_IMAGES_PER_INVOCATION);
  const inline = new Set(here.map((s) => s.imageId));
  let emitted = 0;
  for (const s of services)
    if (!inline.has(s.imageId)) {
      await emit(ctx, { type: 'reconcile', imageId: s.imageId });
      emitted++;
    }
  await reconcileImages(ctx, [...inline]);
  return { here: inline.size, emitted };
}

async function reconcileImage(
  ctx: AppContext,
  imageId: string,
  options: { retryNow?: boolean },
): Promise<ReconcileOutcome> {
  const service = await getService(ctx, imageId);
  // Gone: nothing to plan (its copies were retired when it was removed).
  if (!service) return emptyOutcome();
  // One copy a node: a page of nodes at a time, each with its own slot (global.ts).
  if (service.global)
    return reconcileGlobalFrom(ctx, service, { shard: 0, link: 0, counted: 0 }, true, options);
  // Its nodes and pages of eligible ones, not the fleet (defined for a service not global).
  const targeted = (await imageState(ctx, service))!;
  const state = targeted.state;
  const own = state.instances.filter((i) => i.imageId === imageId);
  await resumeStaleCopies(ctx, own, service);
  // Every copy of the image was read: its counters are checked against them.
  await recountImage(ctx, imageId, own);
  await recordBackoffs(ctx, state);
  const planned = state.services.filter((s) => s.imageId === imageId);
  // Copies the candidates could not take (capacity, constraints, policy): the next page may.
  const { input, plan } = await planPaged(ctx, targeted, state, planned, options);
  await refreshGlobalCounts(ctx, input, planned);
  const outcome: ReconcileOutcome = { ...emptyOutcome(), unplaced: plan.unplaced };
  const services = new Map(state.services.map((s) => [s.imageId, s]));
  for (const action of plan.actions) {
    try {
      await apply(ctx, action, services, outcome);
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
      outcome.lost++;
    }
  }
  if (plan.unplaced.length) ctx.logger.info('reconcile left copies unplaced', { unplaced: plan.unplaced });
  return outcome;
}

/**
 * A global service's reconcile from `start` (global.ts): each node of each page planned and
 * applied on its own; one outcome for what this invocation did.
 */
export async function reconcileGlobalFrom(
  ctx: AppContext,
  service: ServiceItem,
  start: Omit<GlobalLink, 'budget'> & { budget?: number },
  fanOut: boolean,
  options: { retryNow?: boolean } = {},
): Promise<ReconcileOutcome & { read: number; next?: GlobalLink }> {
  const outcome = emptyOutcome();
  const services = new Map([[service.imageId, service]]);
  const applyNode: ApplyFn = async (state, plan, slotKey) => {
    await resumeStaleCopies(
      ctx,
      state.instances.filter((i) => i.imageId === service.imageId),
      service,
    );
    await recordBackoffs(ctx, state);
    const { actions, unplaced } = plan(options);
    outcome.unplaced.push(...unplaced);
    for (const action of actions) {
      try {
        await apply(ctx, action, services, outcome, slotKey);
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
        outcome.lost++;
      }
    }
  };
  const { read, next } = await reconcileGlobal(
    ctx,
    service,
    { ...start, budget: start.budget ?? GLOBAL_ITEMS_PER_INVOCATION },
    fanOut,
    applyNode,
  );
  return { ...outcome, read, ...(next ? { next } : {}) };
}

/** Keeps a global service's stored count at the number of nodes it runs on, for every view. */
async function refreshGlobalCounts(
  ctx: AppContext,
  input: PlanInput,
  services: ServiceItem[],
): Promise<void> {
  for (const s of services) {
    if (!s.global) continue;
    const count = globalCount(
      input.nodes,
      input.services.find((p) => p.imageId === s.imageId) ?? toPlanService(s),
    );
    if (count === s.desiredCount) continue;
    const { version, ...item } = s;
    // Changed meanwhile (false): the next reconcile counts again.
    await putIf(
      ctx.store,
      { ...item, desiredCount: count, version: (version ?? 1) + 1 },
      { version: version ?? 1 },
    );
  }
}

/**
 * For each slot whose copy failed or exited and has no backoff yet: the failures in a row and the
 * time its replacement may start, on the slot (conditional on it still holding that copy) and on
 * the copy (for the views and maintenance); a reconcile is queued for when the wait ends.
 */
async function recordBackoffs(ctx: AppContext, state: FleetState): Promise<void> {
  const instances = new Map(state.instances.map((i) => [i.instanceId, i]));
  for (const slot of state.slots) {
    const inst = instances.get(slot.instanceId);
    if (!inst || !BACKING_OFF.has(inst.status) || slot.backoffFor === inst.instanceId) continue;
    const diedAt = Date.parse(inst.updatedAt);
    const backoff = nextBackoff({
      previousFailures: slot.failures ?? 0,
      status: inst.status as 'failed' | 'exited',
      error: inst.lastError,
      runningSince: inst.runningSince,
      diedAt: Number.isFinite(diedAt) ? Math.min(diedAt, ctx.now()) : ctx.now(),
      baseMs: ctx.config.RESTART_BACKOFF_SECONDS * 1000,
    });
    const written = await updateIf(
      ctx.store,
      slot.pk,
      slot.sk,
      { set: { failures: backoff.attempt, backoffUntil: backoff.nextTryAt, backoffFor: inst.instanceId } },
      { equals: { instanceId: inst.instanceId } },
    );
    if (!written) continue; // replaced meanwhile
    Object.assign(slot, {
      failures: backoff.attempt,
      backoffUntil: backoff.nextTryAt,
      backoffFor: inst.instanceId,
    });
    const ik = keys.instance(inst.instanceId);
    await updateIf(ctx.store, ik.pk, ik.sk, { set: { backoff } }, { equals: { status: inst.status } });
    inst.backoff = backoff;
    ctx.logger.info('copy backing off', { imageId: inst.imageId, instanceId: inst.instanceId, ...backoff });
    const wait = Math.ceil((backoff.nextTryAt - ctx.now()) / 1000);
    if (wait > 0) await emit(ctx, { type: 'reconcile', imageId: inst.imageId }, wait);
  }
}

async function apply(
  ctx: AppContext,
  action: PlanAction,
  services: Map<string, ServiceItem>,
  outcome: ReconcileOutcome,
  /** Where a slot is kept: by ordinal, or a global service's one slot on the node (global.ts). */
  slotKey: (ordinal: number) => { pk: string; sk: string } = (ordinal) =>
    fleetKeys.serviceSlot(action.imageId, ordinal),
): Promise<void> {
  switch (action.type) {
    case 'place': {
      const service = services.get(action.imageId)!;
      const instanceId = newInstanceId();
      const commandId = randomUUID();
      const now = ctx.now();
      const slot = slotKey(action.ordinal);
      const claim = { instanceId, nodeId: action.nodeId, claimedAt: now };
      // The claim decides who places this copy; everything after it is this writer's alone.
      if (action.replaces) {
        await ctx.store.update(slot.pk, slot.sk, { set: claim }, { equals: { instanceId: action.replaces } });
      } else {
        const item: SlotItem = { ...slot, imageId: action.imageId, ordinal: action.ordinal, ...claim };
        await ctx.store.put(item, { notExists: true });
      }
      const at = new Date(now).toISOString();
      const inst: InstanceItem = {
        ...keys.instance(instanceId),
        ...keys.instanceIndexes(action.imageId, action.nodeId, instanceId),
        instanceId,
        imageId: action.imageId,
        nodeId: action.nodeId,
        name: instanceName(instanceId),
        status: 'pending',
        ordinal: action.ordinal,
        resources: service.resources,
        reserve: toReservation(service.resources),
        containerPorts: service.ports ?? [],
        ports: [],
        createdAt: at,
        updatedAt: at,
        startCommandId: commandId,
        lastCommandId: commandId,
      };
      if (!(await putInstance(ctx, inst))) throw new ConditionFailedError(inst.pk, inst.sk);
      try {
        await dispatchCommand(
          ctx,
          action.nodeId,
          { type: 'container.start', spec: startSpec(service, instanceId) },
          { commandId, instanceId },
        );
      } catch (error) {
        // Undeliverable: fail it so the next pass replaces it instead of waiting on it forever.
        await transitionInstance(ctx, instanceId, ['pending'], 'failed', {
          lastError: `dispatch failed: ${(error as Error).message}`,
        });
        throw error;
      }
      outcome.placed.push({
        imageId: action.imageId,
        ordinal: action.ordinal,
        instanceId,
        nodeId: action.nodeId,
        commandId,
      });
      return;
    }
    case 'release': {
      const slot = slotKey(action.ordinal);
      await ctx.store.delete(slot.pk, slot.sk, { equals: { instanceId: action.instanceId } });
      outcome.released++;
      return;
    }
    case 'retire': {
      const inst = await transitionInstance(ctx, action.instanceId, [action.from], 'removing');
      if (!inst) return void outcome.lost++;
      await instanceEndpointsDown(ctx, inst);
      const commandId = await dispatchCommand(
        ctx,
        action.nodeId,
        { type: 'container.remove', instanceId: action.instanceId, force: true },
        { instanceId: action.instanceId },
      );
      await transitionInstance(ctx, action.instanceId, ['removing'], 'removing', {
        lastCommandId: commandId,
      });
      outcome.retired.push(action.instanceId);
      return;
    }
    case 'orphan': {
      const inst = await transitionInstance(ctx, action.instanceId, [action.from], 'orphaned');
      if (!inst) return void outcome.lost++;
      await instanceEndpointsDown(ctx, inst);
      outcome.orphaned.push(action.instanceId);
      return;
    }
  }
}
