import type { AppContext } from '../core/context.js';
import { fleetKeys, instanceKeys, keys } from '../core/keys.js';
import { queryAll, type StoreItem, updateIf, deleteIf, putIfAbsent } from '../ports/store.js';
import type { Backoff } from './backoff.js';
import { countInstance } from './instance-counts.js';
import { nodeShard } from '../nodes/node-records.js';
import type { InstanceStatus } from './plan.js';
import type { InstanceResources, Reservation } from './resources.js';

/** Desired state of one image: how many copies, with what limits, where. */
export interface ServiceItem extends StoreItem {
  imageId: string;
  desiredCount: number;
  resources: InstanceResources;
  /** Container ports to publish (host port chosen by the engine unless `hostPorts` fixes it). */
  ports: number[];
  /** Fixed host ports by container port (Swarm `published_port`): one copy per node then. */
  hostPorts?: Record<string, number>;
  /** Host address published ports bind to (the agent binds 127.0.0.1 when unset). */
  hostIp?: string;
  env: Record<string, string>;
  command?: string[];
  /** Placement restricted to this node when set. */
  nodeId?: string;
  /** Swarm-style placement constraints (`node.labels.cluster==vision`), all of which must hold. */
  constraints?: string[];
  /** Host folders mounted into every copy. */
  volumes?: { hostPath: string; containerPath: string; readOnly: boolean }[];
  /**
   * Swarm's global mode: one copy on each eligible node. The planner counts the nodes; the
   * reconciler keeps `desiredCount` at that count for the views.
   */
  global?: boolean;
  /** The name a Swarm API client gave it; unique (guard item). */
  serviceName?: string;
  /** The last change of its limits as it reaches the copies (rollout.ts). */
  rollout?: RolloutState;
  createdAt: string;
  updatedAt: string;
}

/** A limits change on its way to an image's copies, a page at a time (rollout.ts). */
export interface RolloutState {
  /** Names the change: a later one starts afresh, and this one's links stop. */
  id: string;
  startedAt: string;
  /** Copies given the limits so far (sent an update, or found with them). */
  copies: number;
  /** Where the next link starts (a page's `next_cursor`); absent once finished. */
  cursor?: string;
  finishedAt?: string;
}

export interface PortBinding {
  containerPort: number;
  hostPort: number;
  protocol: string;
}

/** One container the control plane asked a node to run for a service. */
export interface InstanceItem extends StoreItem {
  instanceId: string;
  imageId: string;
  nodeId: string;
  name: string;
  status: InstanceStatus;
  /** The slot it was placed in (informational: the slot item is the truth). */
  ordinal: number;
  resources: InstanceResources;
  reserve: Reservation;
  containerPorts: number[];
  ports: PortBinding[];
  /** The engine's id, once the agent reports it. */
  containerId?: string;
  /** Its lookup key (`CONTAINERID#`) is written: copies from before the key get it once, from a heartbeat. */
  containerKeyed?: boolean;
  createdAt: string;
  updatedAt: string;
  /** Epoch ms when the control plane first saw it running. */
  runningSince?: number;
  exitCode?: number | null;
  lastError?: string;
  startCommandId?: string;
  lastCommandId?: string;
  /**
   * Epoch ms a container.update went out and has no result yet. Engines without in-place update
   * recreate the container, so heartbeats meanwhile may show it exited or gone: not a death.
   */
  updatingSince?: number;
  /** Dead (failed or exited) and waiting before its replacement (orchestrator/backoff.ts). */
  backoff?: Backoff;
  /**
   * A user's stop or delete took this copy off the desired count (it held a place then). One that
   * held none (already replaced, or stopped before) changes no count: each copy is counted off once.
   */
  countedOff?: boolean;
}

/** An update older than this no longer shields the instance (its command was lost). */
export const UPDATE_SHIELD_MS = 5 * 60_000;

export const isUpdating = (i: InstanceItem, now: number) =>
  i.updatingSince !== undefined && now - i.updatingSince < UPDATE_SHIELD_MS;

export interface SlotItem extends StoreItem {
  imageId: string;
  ordinal: number;
  instanceId: string;
  nodeId: string;
  claimedAt: number;
  /** Failures in a row of the copies this slot held (restart backoff). */
  failures?: number;
  /** Epoch ms before which the dead copy `backoffFor` is not replaced. */
  backoffUntil?: number;
  backoffFor?: string;
}

/** Removed instances stay visible to lookups (idempotent DELETE) for a day, then TTL removes them. */
export const REMOVED_TTL_SECONDS = 24 * 3600;

export const instanceName = (instanceId: string) => `container-${instanceId}`;

export async function getService(ctx: AppContext, imageId: string): Promise<ServiceItem | undefined> {
  const k = keys.service(imageId);
  return ctx.store.get<ServiceItem>(k.pk, k.sk);
}

export async function listServices(ctx: AppContext): Promise<ServiceItem[]> {
  return queryAll<ServiceItem>(ctx.store, fleetKeys.servicesPk, { index: 'gsi1' });
}

export async function getInstance(ctx: AppContext, instanceId: string): Promise<InstanceItem | undefined> {
  const k = keys.instance(instanceId);
  return ctx.store.get<InstanceItem>(k.pk, k.sk);
}

/** Instances of an image; `removed` ones are left out unless asked for. */
export async function imageInstances(
  ctx: AppContext,
  imageId: string,
  withRemoved = false,
): Promise<InstanceItem[]> {
  const items = await queryAll<InstanceItem>(ctx.store, fleetKeys.imageInstancesPk(imageId), {
    index: 'gsi1',
  });
  return withRemoved ? items : items.filter((i) => i.status !== 'removed');
}

export async function nodeInstances(
  ctx: AppContext,
  nodeId: string,
  withRemoved = false,
): Promise<InstanceItem[]> {
  const items = await queryAll<InstanceItem>(ctx.store, fleetKeys.nodeInstancesPk(nodeId), { index: 'gsi2' });
  return withRemoved ? items : items.filter((i) => i.status !== 'removed');
}

/** Writes a new instance (false when one has its id) and counts it. */
export async function putInstance(ctx: AppContext, inst: InstanceItem): Promise<boolean> {
  const keyed = inst.containerId ? { containerKeyed: true } : {};
  if (!(await putIfAbsent(ctx.store, { ...inst, ...keyed }))) return false;
  await countInstance(ctx, inst, undefined, inst.status);
  if (inst.containerId) await keyContainer(ctx, inst.containerId, inst.instanceId);
  return true;
}

interface ContainerKeyItem extends StoreItem {
  instanceId: string;
}

/** The lookup from the engine's container id to the instance (findContainer); expiring with a removed one. */
export async function keyContainer(
  ctx: AppContext,
  containerId: string,
  instanceId: string,
  expiresAt?: number,
): Promise<void> {
  await ctx.store.put<ContainerKeyItem>({
    ...instanceKeys.containerId(containerId),
    instanceId,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  });
}

/**
 * The instance whose engine container id is `id` or starts with it (12 characters at least): one
 * query of the lookup keys under its first 12 characters, then each match's instance (a key left
 * by an id the copy no longer has is skipped).
 */
export async function instanceByContainerId(ctx: AppContext, id: string): Promise<InstanceItem | undefined> {
  if (id.length < 12) return undefined;
  const { items } = await ctx.store.query<ContainerKeyItem>(instanceKeys.containerIdPk(id), {
    prefix: id,
    limit: 10,
  });
  for (const key of items) {
    const inst = await getInstance(ctx, key.instanceId);
    if (inst?.containerId?.startsWith(id)) return inst;
  }
  return undefined;
}

export async function serviceSlots(ctx: AppContext, imageId: string): Promise<SlotItem[]> {
  return queryAll<SlotItem>(ctx.store, keys.service(imageId).pk, { prefix: fleetKeys.serviceSlotPrefix });
}

/**
 * Moves an instance to a new status if it is still in one of `from` (tried in order: the status
 * it was read in first), and counts the move (instance-counts.ts); undefined when another writer
 * moved it first (that writer owns the follow-up).
 */
export async function transitionInstance(
  ctx: AppContext,
  instanceId: string,
  from: InstanceStatus[],
  to: InstanceStatus,
  set: Partial<InstanceItem> = {},
): Promise<InstanceItem | undefined> {
  const k = keys.instance(instanceId);
  const now = ctx.now();
  const expires = to === 'removed' ? { expiresAt: Math.floor(now / 1000) + REMOVED_TTL_SECONDS } : {};
  // One status a write, so the count knows which one it left.
  for (const was of from) {
    const updated = await updateIf<InstanceItem>(
      ctx.store,
      k.pk,
      k.sk,
      {
        set: {
          ...set,
          ...(set.containerId ? { containerKeyed: true } : {}),
          status: to,
          updatedAt: new Date(now).toISOString(),
          ...expires,
        },
      },
      { equals: { status: was } },
    );
    if (!updated) continue;
    await countInstance(ctx, updated, was, to);
    if (updated.containerId && (set.containerId || to === 'removed'))
      await keyContainer(ctx, updated.containerId, instanceId, updated.expiresAt);
    return updated;
  }
  return undefined;
}

/** Sets fields of an instance whatever its status (and removes `remove`); undefined when the update is refused. */
export async function setInstance(
  ctx: AppContext,
  instanceId: string,
  set: Partial<InstanceItem>,
  remove: string[] = [],
): Promise<InstanceItem | undefined> {
  const k = keys.instance(instanceId);
  const updated = await updateIf<InstanceItem>(ctx.store, k.pk, k.sk, {
    set: {
      ...set,
      ...(set.containerId ? { containerKeyed: true } : {}),
      updatedAt: new Date(ctx.now()).toISOString(),
    },
    remove,
  });
  if (updated && set.containerId) await keyContainer(ctx, set.containerId, instanceId);
  return updated;
}

/** What finds a copy's slot: its image, node and ordinal. */
type SlotOwner = Pick<InstanceItem, 'imageId' | 'instanceId' | 'nodeId' | 'ordinal'>;

/**
 * The slots that hold the copy: a copy is placed in its ordinal's slot, or in its node's (a global
 * service's, global.ts), so two reads find it, never every slot of the image (one a node for a
 * global service).
 */
export async function slotsHolding(ctx: AppContext, inst: SlotOwner): Promise<SlotItem[]> {
  const at = [fleetKeys.globalSlot(inst.imageId, nodeShard(inst.nodeId), inst.nodeId)];
  if (inst.ordinal >= 0) at.push(fleetKeys.serviceSlot(inst.imageId, inst.ordinal));
  const found = await Promise.all(at.map((k) => ctx.store.get<SlotItem>(k.pk, k.sk)));
  return found.filter((s): s is SlotItem => s?.instanceId === inst.instanceId);
}

/** Deletes the slots that still point at the instance (a user's stop or delete gives the slot up). */
export async function releaseSlotsOf(ctx: AppContext, inst: SlotOwner): Promise<number> {
  let released = 0;
  for (const slot of await slotsHolding(ctx, inst))
    if (await deleteIf(ctx.store, slot.pk, slot.sk, { equals: { instanceId: inst.instanceId } })) released++;
  return released;
}

/** Adds `delta` to the desired count, never below zero; retries lost races on the version. */
export async function adjustDesired(
  ctx: AppContext,
  imageId: string,
  delta: number,
): Promise<ServiceItem | undefined> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const service = await getService(ctx, imageId);
    if (!service) return undefined;
    const desiredCount = Math.max(0, service.desiredCount + delta);
    const updated = await updateIf<ServiceItem>(
      ctx.store,
      service.pk,
      service.sk,
      { set: { desiredCount, updatedAt: new Date(ctx.now()).toISOString() } },
      { version: service.version ?? 1 },
    );
    if (updated) return updated;
  }
  throw new Error(`Could not update the desired count of ${imageId}: too many concurrent changes`);
}
