// Types for the shared inference-task scheduler. Cluster "tasks" and fleet "vision jobs"
// are the same thing here: one queue, one set of GPU nodes, one placement policy.

export interface SchedRequirements {
  /** Exact match on SchedNode.gpuType. */
  gpuType?: string;
  /** Every key/value must be present in SchedNode.labels. */
  labels?: Readonly<Record<string, string>>;
}

export interface SchedNode {
  id: string;
  online: boolean;
  gpuMemoryTotalMb: number;
  /** Reported usage. Informational only: switches happen on idle nodes, where every model is unloaded. */
  gpuMemoryUsedMb?: number;
  /** Models resident on the node. */
  loadedModels: readonly string[];
  runningTasks: number;
  maxConcurrency: number;
  gpuType?: string;
  labels?: Readonly<Record<string, string>>;
}

export interface SchedModel {
  id: string;
  gpuMemoryMb: number;
}

export interface SchedTask {
  id: string;
  model: string;
  /** Normalised priority (see priority.ts): low -1, normal 0, high 1, critical 2. */
  priority: number;
  /** Epoch ms. */
  enqueuedAt: number;
  /** Relative to enqueuedAt. Absent: never times out. */
  timeoutMs?: number;
  requirements?: SchedRequirements;
}

export interface PlacementOptions {
  /** Priority levels gained per minute of waiting. Default 0.1 (low overtakes a fresh critical after 30 min). */
  agingPerMinute?: number;
  /**
   * A task blocked this long, whose model is resident nowhere it may run, reserves one node:
   * nothing placed after it in the same plan may start there, so the node drains and can be
   * switched. Without this, a steady stream of other-model tasks keeps every node busy and the
   * switch never happens. Default 120 000; Infinity disables.
   */
  drainAfterMs?: number;
  /** Cap on nodes reserved for draining per plan. Default max(1, floor(onlineNodes / 10)). */
  maxDrainingNodes?: number;
  /** GPU memory kept free on every node when deciding whether a model fits. Default 0. */
  memoryHeadroomMb?: number;
}

export interface PlacementInput {
  nodes: readonly SchedNode[];
  models: readonly SchedModel[];
  queue: readonly SchedTask[];
  /** Epoch ms; the only clock the planner sees. */
  now: number;
  options?: PlacementOptions;
}

export interface ModelSwitch {
  /** Models resident before the switch (all are unloaded), sorted. */
  from: string[];
  to: string;
}

export interface Placement {
  taskId: string;
  nodeId: string;
  /** Present on the placement that makes the node switch; later placements on it ride along. */
  switchModel?: ModelSwitch;
}

export interface DrainReservation {
  nodeId: string;
  /** The starving task the node is held for. */
  taskId: string;
  model: string;
}

export interface PlacementPlan {
  /** In decision order (highest effective priority first). */
  placements: Placement[];
  /** Input order. */
  timedOut: string[];
  /** In scheduling order, so the index is the queue position. */
  stillQueued: string[];
  draining: DrainReservation[];
}

// ---- Rebalance ----

/** `memory_optimized` is the doc's strategy; `load_balanced` is ours (the doc names no other). */
export type RebalanceStrategy = 'memory_optimized' | 'load_balanced';

/** A running task: which model it holds resident on which node. */
export interface SchedAssignment {
  nodeId: string;
  model: string;
  taskId?: string;
}

/** `move` is the doc's `model_migration` (from_worker, to_worker, model). */
export type RebalanceOperation =
  | { type: 'load'; nodeId: string; model: string; reason: string }
  | { type: 'unload'; nodeId: string; model: string; reason: string; interruptsTasks?: number }
  | {
      type: 'move';
      fromNodeId: string;
      toNodeId: string;
      model: string;
      reason: string;
      interruptsTasks?: number;
    };

export interface RebalanceOptions {
  /** Queued tasks per model; drives replica targets. */
  demand?: Readonly<Record<string, number>>;
  /**
   * Let the over-commit repair evict models that have running tasks (the operation says how many
   * it interrupts). Balancing never interrupts tasks. Default false.
   */
  force?: boolean;
  memoryHeadroomMb?: number;
}

export interface RebalancePlan {
  strategy: RebalanceStrategy;
  operations: RebalanceOperation[];
  /** Sorted node ids touched by any operation. */
  affectedNodes: string[];
}
