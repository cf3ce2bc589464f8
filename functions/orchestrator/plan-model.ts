/** What the reconciler's plan reads and writes (plan.ts): instance states, nodes, services, slots, actions. */
import type { Constraint, NodeFacts } from './constraints.js';
import type { Reservation } from './resources.js';

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
export const LOCKED: ReadonlySet<InstanceStatus> = new Set(['stopping', 'removing']);
/** A dead copy in these states waits out its slot's backoff before it is replaced. */
export const BACKING_OFF: ReadonlySet<InstanceStatus> = new Set(['failed', 'exited']);
/** Unreferenced instances in these states need nothing more. */
export const SETTLED: ReadonlySet<InstanceStatus> = new Set(['stopped', 'stopping', 'removing', 'removed']);

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
