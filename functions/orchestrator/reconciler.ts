import { randomBytes, randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { fleetKeys, keys } from '../core/keys.js';
import { emit } from '../core/events.js';
import { dispatchCommand } from '../nodes/commands.js';
import {
  getNode,
  isCordoned,
  isDraining,
  isOnline,
  listNodes,
  nodeLabels,
  type NodeItem,
} from '../nodes/nodes.js';
import { NODE_SHARDS, clearUp, type FreeRecord } from '../nodes/node-records.js';
import type { ContainerSpec } from '../../protocol/commands.js';
import { ConditionFailedError, putIf, updateIf } from '../ports/store.js';
import {
  allInstances,
  getService,
  imageInstances,
  instanceName,
  nodeInstances,
  listServices,
  serviceSlots,
  transitionInstance,
  type InstanceItem,
  type ServiceItem,
  type SlotItem,
} from './model.js';
import { nextBackoff } from './backoff.js';
import {
  BACKING_OFF,
  globalCount,
  planReconcile,
  type PlanAction,
  type PlanInput,
  type PlanService,
  type Unplaced,
} from './plan.js';
import { parseConstraint } from './constraints.js';
import { instanceEndpointsDown } from './registry.js';
import { toReservation, type Reservation } from './resources.js';
import { activeRuns } from '../training/model.js';
import { policyRefusalOn } from '../nodes/node-policy.js';

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

export interface FleetState {
  nodes: NodeItem[];
  services: ServiceItem[];
  instances: InstanceItem[];
  slots: SlotItem[];
  /** What training runs hold on their nodes: one capacity model for both workloads. */
  held: { nodeId: string; reserve: Reservation }[];
}

/** `nodes`: those whose own policy refuses the service's containers are left out of its placement. */
export const toPlanService = (s: ServiceItem, nodes: readonly NodeItem[] = []): PlanService => ({
  ...refusedBy(s, nodes),
  imageId: s.imageId,
  desiredCount: s.desiredCount,
  reserve: toReservation(s.resources),
  ...(s.nodeId ? { nodeId: s.nodeId } : {}),
  ...(Object.keys(s.hostPorts ?? {}).length ? { onePerNode: true } : {}),
  ...(s.global ? { global: true } : {}),
  ...(s.command?.length ? { hasCommand: true } : {}),
  // Stored constraints were validated when written; one that no longer parses matches nothing.
  ...(s.constraints?.length
    ? {
        constraints: s.constraints.map((c) => {
          const parsed = parseConstraint(c);
          return typeof parsed === 'string' ? { field: 'id', op: '==' as const, value: '' } : parsed;
        }),
      }
    : {}),
});

function refusedBy(s: ServiceItem, nodes: readonly NodeItem[]): { refusedBy?: Set<string> } {
  if (!s.volumes?.length) return {}; // nothing else a service asks is ruled on by a policy
  const spec = startSpec(s, 'policy-check');
  const refused = new Set(nodes.filter((n) => policyRefusalOn(n, spec)).map((n) => n.nodeId));
  return refused.size ? { refusedBy: refused } : {};
}

/**
 * Reads what the planner needs. Instances are read before slots: an instance is written after
 * its slot is claimed, so every instance this view holds has its claim in the later slot view,
 * and an instance is never retired for a claim this reader missed.
 */
export async function loadState(ctx: AppContext, imageId?: string): Promise<FleetState> {
  const [nodes, services] = await Promise.all([listNodes(ctx), listServices(ctx)]);
  const instances = await allInstances(ctx, services);
  const planned = imageId ? services.filter((s) => s.imageId === imageId) : services;
  const slots = (await Promise.all(planned.map((s) => serviceSlots(ctx, s.imageId)))).flat();
  const held = (await activeRuns(ctx)).flatMap((r) =>
    r.nodeId && r.reserve ? [{ nodeId: r.nodeId, reserve: r.reserve }] : [],
  );
  return { nodes, services, instances, slots, held };
}

export function planInput(
  ctx: AppContext,
  state: FleetState,
  planned: PlanService[],
  options: { retryNow?: boolean } = {},
): PlanInput {
  const now = ctx.now();
  return {
    now,
    nodes: state.nodes.map((n) => ({
      id: n.nodeId,
      online: isOnline(n, ctx, now),
      ...(isCordoned(n) ? { cordoned: true } : {}),
      ...(isDraining(n) ? { draining: true } : {}),
      ...(n.driver === 'process' ? { processOnly: true } : {}),
      capacity: { cpu: n.cpuCount, memoryMb: n.memoryMb, diskGb: n.diskGb, gpus: n.gpus.length },
      facts: { id: n.nodeId, hostname: n.hostname, labels: nodeLabels(n), arch: n.arch, os: n.os },
    })),
    services: planned,
    slots: state.slots.map((s) => ({
      imageId: s.imageId,
      ordinal: s.ordinal,
      instanceId: s.instanceId,
      nodeId: s.nodeId,
      claimedAt: s.claimedAt,
      ...(!options.retryNow && s.backoffFor === s.instanceId && s.backoffUntil !== undefined
        ? { backoffUntil: s.backoffUntil }
        : {}),
    })),
    instances: state.instances.map((i) => ({
      instanceId: i.instanceId,
      imageId: i.imageId,
      nodeId: i.nodeId,
      status: i.status,
      reserve: i.reserve,
    })),
    held: state.held,
  };
}

/** Docker-style short id: what the orchestrator API calls a container id. */
const newInstanceId = () => randomBytes(6).toString('hex');

export function startSpec(service: ServiceItem, instanceId: string): ContainerSpec {
  const r = toReservation(service.resources);
  return {
    instanceId,
    imageId: service.imageId,
    name: instanceName(instanceId),
    kind: 'service',
    ...(service.command?.length ? { command: service.command } : {}),
    env: service.env ?? {},
    ports: (service.ports ?? []).map((containerPort) => ({
      containerPort,
      hostPort: service.hostPorts?.[String(containerPort)] ?? 0,
      protocol: 'tcp' as const,
      ...(service.hostIp ? { hostIp: service.hostIp } : {}),
    })),
    volumes: service.volumes ?? [],
    ...(r.cpu ? { cpuLimit: r.cpu } : {}),
    ...(r.memoryMb ? { memoryLimitMb: r.memoryMb } : {}),
    ...(r.diskGb ? { diskLimitGb: r.diskGb } : {}),
    ...(r.gpus ? { gpus: r.gpus } : {}),
    labels: {},
    // The control plane replaces dead containers (maybe elsewhere); the engine must not restart them behind its back.
    restart: 'no',
  };
}

/** The most eligible nodes one read of the index takes (a start that needs more reads the next page). */
export const NODE_PAGE = 16;

/** What a reconcile of one image read for its nodes: lookups of the eligible-node index and nodes read. */
export interface CandidateReads {
  lookups: number;
  nodes: number;
}

/**
 * One image's state for a reconcile that does not read the fleet: the service, its slots and
 * copies, the nodes they are on (and its pinned node), and a page of the eligible-node index
 * (`NODEUP#<shard>`, from a random shard on), each candidate with the copies it already runs (their
 * reservations count). `more()` reads the next page, for when the plan could not place every copy;
 * false once the index is read through. Undefined for a global service (it runs on every eligible
 * node, so it reads the fleet) or one that is gone.
 */
export async function imageState(
  ctx: AppContext,
  service: ServiceItem | undefined,
): Promise<ImageState | undefined> {
  if (!service || service.global) return undefined;
  const imageId = service.imageId;
  const [own, slots, runs] = await Promise.all([
    imageInstances(ctx, imageId),
    serviceSlots(ctx, imageId),
    activeRuns(ctx),
  ]);
  const state: FleetState = {
    nodes: [],
    services: [service],
    instances: [...own],
    slots,
    held: runs.flatMap((r) => (r.nodeId && r.reserve ? [{ nodeId: r.nodeId, reserve: r.reserve }] : [])),
  };
  const read: CandidateReads = { lookups: 0, nodes: 0 };
  const known = new Set<string>();
  const seenInstances = new Set(own.map((i) => i.instanceId));
  const addNodes = async (ids: string[], fromIndex: boolean) => {
    const fresh = [...new Set(ids)].filter((id) => !known.has(id));
    for (const id of fresh) known.add(id);
    read.nodes += fresh.length;
    const loaded = await Promise.all(
      fresh.map(async (id) => [id, await getNode(ctx, id), await nodeInstances(ctx, id)] as const),
    );
    const now = ctx.now();
    for (const [id, node, instances] of loaded) {
      if (node) state.nodes.push(node);
      for (const i of instances)
        if (!seenInstances.has(i.instanceId)) {
          seenInstances.add(i.instanceId);
          state.instances.push(i);
        }
      // A stale entry (gone, offline, cordoned) leaves the index; the next liveness change writes it back.
      if (fromIndex && (!node || !isOnline(node, ctx, now) || isCordoned(node))) await clearUp(ctx, id);
    }
  };
  await addNodes(
    [...own.map((i) => i.nodeId), ...slots.map((s) => s.nodeId), ...(service.nodeId ? [service.nodeId] : [])],
    false,
  );
  // Pinned: its node is the only place it may go.
  const start = Math.floor(Math.random() * NODE_SHARDS);
  let visited = service.nodeId ? NODE_SHARDS : 0;
  let cursor: string | undefined;
  const more = async (): Promise<boolean> => {
    const ids: string[] = [];
    while (visited < NODE_SHARDS && ids.length < NODE_PAGE) {
      read.lookups++;
      const page = await ctx.store.query<FreeRecord>(fleetKeys.nodeUpPk((start + visited) % NODE_SHARDS), {
        limit: NODE_PAGE - ids.length,
        ...(cursor ? { cursor } : {}),
      });
      ids.push(...page.items.map((r) => r.nodeId).filter((id) => !known.has(id)));
      cursor = page.cursor;
      if (!cursor) visited++;
    }
    if (!ids.length) return false;
    await addNodes(ids, true);
    return true;
  };
  await more();
  return { state, more, read };
}

export interface ImageState {
  state: FleetState;
  more: () => Promise<boolean>;
  read: CandidateReads;
}

/**
 * Plans `planned` over the state, reading more pages of eligible nodes while copies are left
 * unplaced for want of a node (not for a backoff) and the index has more.
 */
export async function planPaged(
  ctx: AppContext,
  image: ImageState | undefined,
  state: FleetState,
  planned: ServiceItem[],
  options: { retryNow?: boolean } = {},
): Promise<{ input: PlanInput; plan: ReturnType<typeof planReconcile> }> {
  const planFor = () => {
    const input = planInput(
      ctx,
      state,
      planned.map((s) => toPlanService(s, state.nodes)),
      options,
    );
    return { input, plan: planReconcile(input) };
  };
  let out = planFor();
  while (image && out.plan.unplaced.some((u) => !u.reason.startsWith('backing off')) && (await image.more()))
    out = planFor();
  return out;
}

/** Plans and applies. Safe to run concurrently with itself: every write is conditional. */
export async function reconcile(
  ctx: AppContext,
  /** `retryNow`: a person asked for the dead copies back (a quick fix): their backoff is skipped. */
  options: { imageId?: string; retryNow?: boolean } = {},
): Promise<ReconcileOutcome> {
  // One image: its nodes and pages of eligible ones, not the fleet (a global service reads the fleet).
  const targeted = options.imageId
    ? await imageState(ctx, await getService(ctx, options.imageId))
    : undefined;
  const state = targeted?.state ?? (await loadState(ctx, options.imageId));
  await recordBackoffs(ctx, state);
  const planned = state.services.filter((s) => !options.imageId || s.imageId === options.imageId);
  // Copies the candidates could not take (capacity, constraints, policy): the next page may.
  const { input, plan } = await planPaged(ctx, targeted, state, planned, options);
  await refreshGlobalCounts(ctx, input, planned);
  const outcome: ReconcileOutcome = {
    placed: [],
    released: 0,
    retired: [],
    orphaned: [],
    unplaced: plan.unplaced,
    lost: 0,
  };
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
    const k = fleetKeys.serviceSlot(slot.imageId, slot.ordinal);
    const written = await updateIf(
      ctx.store,
      k.pk,
      k.sk,
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
): Promise<void> {
  switch (action.type) {
    case 'place': {
      const service = services.get(action.imageId)!;
      const instanceId = newInstanceId();
      const commandId = randomUUID();
      const now = ctx.now();
      const slot = fleetKeys.serviceSlot(action.imageId, action.ordinal);
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
      await ctx.store.put(inst, { notExists: true });
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
      const slot = fleetKeys.serviceSlot(action.imageId, action.ordinal);
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

/**
 * The periodic safety net (a lost event, a node that went quiet): every minute the sweep flips
 * silent nodes offline and asks for a full reconcile. Run once at startup; upsert is idempotent.
 */
export async function ensureReconcileSchedule(ctx: AppContext): Promise<void> {
  await ctx.scheduler.upsert({
    name: 'reconcile',
    expression: 'rate(1 minute)',
    payload: JSON.stringify({ type: 'nodes.sweep' }),
    description: 'Marks silent nodes offline, then reconciles every image against its desired count',
  });
}
