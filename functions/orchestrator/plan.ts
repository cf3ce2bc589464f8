import { satisfies, type Constraint, type NodeFacts } from './constraints.js';
import type { Reservation } from './resources.js';

/**
 * The reconciler's planning step. Pure: the plan depends only on the input, so it is tested
 * without a table, a queue or a clock.
 *
 * Desired state is a count per image. Each running copy holds a *slot* (image + ordinal); a slot
 * is claimed with a conditional write (a new ordinal with notExists, a replacement with
 * "still points at the old instance"), so two reconcilers that plan the same change at once
 * place it once: the second write fails and its action is dropped.
 *
 * Per service, in image order:
 *   1. more slots than desired → release the surplus: slots whose instance a user is stopping
 *      first, then dead, then just-claimed, then healthy; the highest ordinal first within a rank;
 *   2. every remaining dead slot (instance exited, failed, gone, or its node offline) → place a
 *      replacement, the slot keeps its ordinal; a copy that failed or exited waits out its
 *      slot's backoff first;
 *   3. fewer slots than desired → place new ones at the lowest free ordinals;
 *   2b. a running copy on a draining node → a replacement on another node (the old copy is then
 *      unreferenced and retired by step 4); with nowhere to go it stays and is reported unplaced;
 *   4. instances no slot points at any more → retire (remove the container) when their node is
 *      online, else mark them orphaned so they are removed when the node returns.
 * Placement: online, uncordoned nodes (the pinned node only, when it has one; those meeting its constraints) with enough free
 * CPU, memory, disk and GPUs; the least loaded first (highest reserved fraction of CPU or memory),
 * then the one running fewest copies of this image, then fewest containers, then by id.
 */

export type InstanceStatus =
  'pending' | 'running' | 'stopping' | 'stopped' | 'exited' | 'failed' | 'orphaned' | 'removing' | 'removed';

/** A container that exists, or may exist, and holds its reservation on the node. */
export const OCCUPYING: ReadonlySet<InstanceStatus> = new Set([
  'pending',
  'running',
  'stopping',
  'removing',
  'orphaned',
]);
/** Counts toward the desired count. */
export const LIVE: ReadonlySet<InstanceStatus> = new Set(['pending', 'running']);
/** A user's stop or delete is in progress: the reconciler leaves the slot to that flow. */
const LOCKED: ReadonlySet<InstanceStatus> = new Set(['stopping', 'removing']);
/** A dead copy in these states waits out its slot's backoff before it is replaced. */
export const BACKING_OFF: ReadonlySet<InstanceStatus> = new Set(['failed', 'exited']);
/** Unreferenced instances in these states need nothing more. */
const SETTLED: ReadonlySet<InstanceStatus> = new Set(['stopped', 'stopping', 'removing', 'removed']);

export interface PlanNode {
  id: string;
  online: boolean;
  capacity: Reservation;
  /** What placement constraints are checked against. */
  facts?: NodeFacts;
  /** Cordoned: takes no new copies; what runs there stays. */
  cordoned?: boolean;
  /** Draining (cordoned too): its copies move to other nodes, each retired once its replacement is placed. */
  draining?: boolean;
  /** A process node (no container engine): runs only services that give a command. */
  processOnly?: boolean;
}

export interface PlanService {
  imageId: string;
  desiredCount: number;
  reserve: Reservation;
  /** Placement restricted to this node. */
  nodeId?: string;
  /** Placement restricted to nodes that satisfy all of these. */
  constraints?: readonly Constraint[];
  /** At most one copy per node (the copies publish fixed host ports). */
  onePerNode?: boolean;
  /** Swarm's global mode: one copy on each eligible node; `desiredCount` is ignored (see globalCount). */
  global?: boolean;
  /** Nodes whose own policy refuses its containers (nodes/node-policy.ts): never placed there. */
  refusedBy?: ReadonlySet<string>;
  /** It gives a command, so a process node can run it. */
  hasCommand?: boolean;
}

export interface PlanSlot {
  imageId: string;
  ordinal: number;
  instanceId: string;
  nodeId: string;
  /** Epoch ms of the claim. */
  claimedAt: number;
  /** Its dead copy is not replaced before this (restart backoff, orchestrator/backoff.ts). */
  backoffUntil?: number;
}

export interface PlanInstance {
  instanceId: string;
  imageId: string;
  nodeId: string;
  status: InstanceStatus;
  reserve: Reservation;
}

export interface PlanInput {
  now: number;
  nodes: readonly PlanNode[];
  /** The services to plan (all, or the one that changed). */
  services: readonly PlanService[];
  /** Slots of the planned services. */
  slots: readonly PlanSlot[];
  /** Every instance of every service: reservations of other images count against capacity too. */
  instances: readonly PlanInstance[];
  /** Capacity other workloads hold on nodes (training runs): placement counts it, nothing else. */
  held?: readonly { nodeId: string; reserve: Reservation }[];
  /**
   * A slot whose instance record is not there yet is a placement in flight (the claim is written
   * before the instance) for this long; after it the slot is dead.
   */
  inflightGraceMs?: number;
}

export type PlanAction =
  /** Claim the slot (notExists, or `replaces` still in it), create the instance, send container.start. */
  | { type: 'place'; imageId: string; ordinal: number; nodeId: string; replaces?: string }
  /** Delete the slot if it still points at the instance. */
  | { type: 'release'; imageId: string; ordinal: number; instanceId: string }
  /** Send container.remove if the instance is still in `from`. */
  | { type: 'retire'; imageId: string; instanceId: string; nodeId: string; from: InstanceStatus }
  /** The node is offline: mark the instance for removal when it returns. */
  | { type: 'orphan'; imageId: string; instanceId: string; nodeId: string; from: InstanceStatus };

export interface Unplaced {
  imageId: string;
  /** The slot that stays empty or dead. */
  ordinal: number;
  reason: string;
}

export interface Plan {
  actions: PlanAction[];
  unplaced: Unplaced[];
}

export const DEFAULT_INFLIGHT_GRACE_MS = 30_000;

type SlotState = 'healthy' | 'inflight' | 'locked' | 'dead' | 'draining';
const RELEASE_RANK: Record<SlotState, number> = { locked: 0, dead: 1, draining: 2, inflight: 3, healthy: 4 };

interface NodeLoad {
  node: PlanNode;
  used: Reservation;
  containers: number;
  perImage: Map<string, number>;
}

const add = (a: Reservation, b: Reservation): Reservation => ({
  cpu: a.cpu + b.cpu,
  memoryMb: a.memoryMb + b.memoryMb,
  diskGb: a.diskGb + b.diskGb,
  gpus: a.gpus + b.gpus,
});

const ZERO: Reservation = { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 };
// Float sums of "0.1"-style limits must not make an exact fit look over capacity.
const EPS = 1e-9;

function fits(load: NodeLoad, want: Reservation): boolean {
  const cap = load.node.capacity;
  const fitsOne = (used: number, asked: number, total: number) => asked <= 0 || used + asked <= total + EPS;
  return (
    fitsOne(load.used.cpu, want.cpu, cap.cpu) &&
    fitsOne(load.used.memoryMb, want.memoryMb, cap.memoryMb) &&
    fitsOne(load.used.diskGb, want.diskGb, cap.diskGb) &&
    fitsOne(load.used.gpus, want.gpus, cap.gpus)
  );
}

function loadFraction(load: NodeLoad): number {
  const cap = load.node.capacity;
  const cpu = cap.cpu > 0 ? load.used.cpu / cap.cpu : 0;
  const mem = cap.memoryMb > 0 ? load.used.memoryMb / cap.memoryMb : 0;
  return Math.max(cpu, mem);
}

/** A node with no recorded facts satisfies no constraint. */
const eligible = (node: PlanNode, service: PlanService) =>
  (!node.processOnly || service.hasCommand === true) &&
  (!service.constraints?.length || (node.facts !== undefined && satisfies(node.facts, service.constraints)));

function reason(service: PlanService, loads: Map<string, NodeLoad>): string {
  if (service.nodeId) {
    const pinned = loads.get(service.nodeId);
    if (!pinned) return `node ${service.nodeId} is unknown`;
    if (!pinned.node.online) return `node ${service.nodeId} is offline`;
    if (pinned.node.cordoned || pinned.node.draining) return `node ${service.nodeId} is cordoned`;
    return `node ${service.nodeId} lacks free resources`;
  }
  const up = [...loads.values()].filter((l) => l.node.online);
  if (!up.length) return 'no online node';
  const online = up.filter((l) => !l.node.cordoned && !l.node.draining);
  if (!online.length) return 'every online node is cordoned';
  if (service.constraints?.length && !online.some((l) => eligible(l.node, service)))
    return 'no online node satisfies the placement constraints';
  if (
    service.refusedBy?.size &&
    online.every((l) => !eligible(l.node, service) || service.refusedBy?.has(l.node.id))
  )
    return "every online node's own policy refuses its containers";
  if (!online.some((l) => eligible(l.node, service)))
    return 'no online node can run it: process nodes (no container engine) run only services that give a command';
  return 'no online node has enough free resources';
}

/** Nodes a global service runs on: online, taking work, meeting its pin and constraints, and whose policy allows it. */
export function globalCount(nodes: readonly PlanNode[], service: PlanService): number {
  return nodes.filter(
    (n) =>
      n.online &&
      !n.cordoned &&
      !n.draining &&
      (!service.nodeId || n.id === service.nodeId) &&
      eligible(n, service) &&
      !service.refusedBy?.has(n.id),
  ).length;
}

export function planReconcile(input: PlanInput): Plan {
  const grace = input.inflightGraceMs ?? DEFAULT_INFLIGHT_GRACE_MS;
  const actions: PlanAction[] = [];
  const unplaced: Unplaced[] = [];

  const loads = new Map<string, NodeLoad>();
  for (const node of input.nodes)
    loads.set(node.id, { node, used: { ...ZERO }, containers: 0, perImage: new Map() });
  const occupy = (nodeId: string, imageId: string, reserve: Reservation) => {
    const load = loads.get(nodeId);
    if (!load) return;
    load.used = add(load.used, reserve);
    load.containers += 1;
    load.perImage.set(imageId, (load.perImage.get(imageId) ?? 0) + 1);
  };

  const instances = new Map(input.instances.map((i) => [i.instanceId, i]));
  for (const i of input.instances) if (OCCUPYING.has(i.status)) occupy(i.nodeId, i.imageId, i.reserve);
  for (const h of input.held ?? []) occupy(h.nodeId, '', h.reserve);
  const services = [...input.services]
    .map((s) => (s.global ? { ...s, onePerNode: true, desiredCount: globalCount(input.nodes, s) } : s))
    .sort((a, b) => (a.imageId < b.imageId ? -1 : a.imageId > b.imageId ? 1 : 0));
  const byService = new Map<string, PlanSlot[]>();
  for (const s of input.slots) {
    const list = byService.get(s.imageId) ?? [];
    list.push(s);
    byService.set(s.imageId, list);
  }
  // A claimed slot whose instance is not written yet still reserves on its node.
  const serviceReserve = new Map(services.map((s) => [s.imageId, s.reserve]));
  for (const s of input.slots) {
    if (!instances.has(s.instanceId) && input.now - s.claimedAt < grace) {
      occupy(s.nodeId, s.imageId, serviceReserve.get(s.imageId) ?? ZERO);
    }
  }

  const stateOf = (slot: PlanSlot, service: PlanService): SlotState => {
    const inst = instances.get(slot.instanceId);
    if (!inst) return input.now - slot.claimedAt < grace ? 'inflight' : 'dead';
    if (LOCKED.has(inst.status)) return 'locked';
    const node = loads.get(inst.nodeId)?.node;
    // A copy on a node that no longer meets the constraints (its labels changed) moves.
    if (LIVE.has(inst.status) && node?.online && eligible(node, service))
      return node.draining ? 'draining' : 'healthy';
    return 'dead';
  };

  const choose = (service: PlanService): NodeLoad | undefined => {
    let best: NodeLoad | undefined;
    let bestKey: [number, number, number, string] | undefined;
    for (const load of loads.values()) {
      if (!load.node.online || load.node.cordoned || load.node.draining) continue;
      if (service.nodeId && load.node.id !== service.nodeId) continue;
      if (!eligible(load.node, service)) continue;
      if (service.refusedBy?.has(load.node.id)) continue;
      if (service.onePerNode && (load.perImage.get(service.imageId) ?? 0) > 0) continue;
      if (!fits(load, service.reserve)) continue;
      const key: [number, number, number, string] = [
        loadFraction(load),
        load.perImage.get(service.imageId) ?? 0,
        load.containers,
        load.node.id,
      ];
      if (!bestKey || compareKeys(key, bestKey) < 0) {
        best = load;
        bestKey = key;
      }
    }
    return best;
  };

  for (const service of services) {
    const slots = [...(byService.get(service.imageId) ?? [])].sort((a, b) => a.ordinal - b.ordinal);
    const states = new Map(slots.map((s) => [s.ordinal, stateOf(s, service)]));
    const referenced = new Set<string>();

    let kept = slots;
    const surplus = slots.length - Math.max(0, service.desiredCount);
    if (surplus > 0) {
      const order = [...slots].sort(
        (a, b) =>
          RELEASE_RANK[states.get(a.ordinal)!] - RELEASE_RANK[states.get(b.ordinal)!] ||
          b.ordinal - a.ordinal,
      );
      const released = new Set(order.slice(0, surplus).map((s) => s.ordinal));
      for (const s of slots) {
        if (released.has(s.ordinal))
          actions.push({
            type: 'release',
            imageId: service.imageId,
            ordinal: s.ordinal,
            instanceId: s.instanceId,
          });
      }
      kept = slots.filter((s) => !released.has(s.ordinal));
    }

    for (const slot of kept) {
      const state = states.get(slot.ordinal);
      if (state === 'draining') {
        // A running copy on a draining node moves only where a replacement can go; else it stays.
        const target = choose(service);
        if (!target) {
          referenced.add(slot.instanceId);
          unplaced.push({
            imageId: service.imageId,
            ordinal: slot.ordinal,
            reason: `draining: ${reason(service, loads)}`,
          });
          continue;
        }
        occupy(target.node.id, service.imageId, service.reserve);
        actions.push({
          type: 'place',
          imageId: service.imageId,
          ordinal: slot.ordinal,
          nodeId: target.node.id,
          replaces: slot.instanceId,
        });
        continue;
      }
      if (state !== 'dead') {
        referenced.add(slot.instanceId);
        continue;
      }
      const dead = instances.get(slot.instanceId);
      if (
        slot.backoffUntil !== undefined &&
        slot.backoffUntil > input.now &&
        dead &&
        BACKING_OFF.has(dead.status)
      ) {
        // The copy failed or exited: it stays in its slot until its backoff ends.
        referenced.add(slot.instanceId);
        unplaced.push({
          imageId: service.imageId,
          ordinal: slot.ordinal,
          reason: `backing off until ${new Date(slot.backoffUntil).toISOString()}`,
        });
        continue;
      }
      const target = choose(service);
      if (!target) {
        // Nowhere to go: the slot keeps its dead instance until capacity appears.
        referenced.add(slot.instanceId);
        unplaced.push({ imageId: service.imageId, ordinal: slot.ordinal, reason: reason(service, loads) });
        continue;
      }
      occupy(target.node.id, service.imageId, service.reserve);
      actions.push({
        type: 'place',
        imageId: service.imageId,
        ordinal: slot.ordinal,
        nodeId: target.node.id,
        replaces: slot.instanceId,
      });
    }

    const used = new Set(slots.map((s) => s.ordinal));
    let next = 0;
    for (let missing = service.desiredCount - kept.length; missing > 0; missing--) {
      while (used.has(next)) next++;
      const ordinal = next++;
      const target = choose(service);
      if (!target) {
        unplaced.push({ imageId: service.imageId, ordinal, reason: reason(service, loads) });
        continue;
      }
      occupy(target.node.id, service.imageId, service.reserve);
      actions.push({ type: 'place', imageId: service.imageId, ordinal, nodeId: target.node.id });
    }

    for (const inst of input.instances) {
      if (inst.imageId !== service.imageId || referenced.has(inst.instanceId) || SETTLED.has(inst.status))
        continue;
      const online = loads.get(inst.nodeId)?.node.online ?? false;
      if (online)
        actions.push({
          type: 'retire',
          imageId: inst.imageId,
          instanceId: inst.instanceId,
          nodeId: inst.nodeId,
          from: inst.status,
        });
      else if (inst.status !== 'orphaned') {
        actions.push({
          type: 'orphan',
          imageId: inst.imageId,
          instanceId: inst.instanceId,
          nodeId: inst.nodeId,
          from: inst.status,
        });
      }
    }
  }
  return { actions, unplaced };
}

function compareKeys(a: [number, number, number, string], b: [number, number, number, string]): number {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (Math.abs(d) > EPS) return d;
  }
  return a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : 0;
}
