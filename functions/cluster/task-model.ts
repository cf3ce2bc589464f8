import type { Command } from '../../protocol/commands.js';
import type { StoreItem } from '../ports/store.js';

/** A task's record and states (tasks.ts moves them; task-counts.ts counts them). */
export type TaskStatus = 'queued' | 'assigned' | 'running' | 'completed' | 'failed' | 'cancelled';
export const ACTIVE: TaskStatus[] = ['assigned', 'running'];
export const TERMINAL: TaskStatus[] = ['completed', 'failed', 'cancelled'];

export interface TaskItem extends StoreItem {
  taskId: string;
  /** Which API submitted it (views differ, the queue does not). */
  source: 'cluster' | 'vision';
  taskType: string;
  model: string;
  parameters: Record<string, unknown>;
  /** Normalised (-1..2); `priorityInput` is what the caller sent. */
  priority: number;
  priorityInput: string | number;
  requirements?: { gpuType?: string; labels?: Record<string, string> };
  status: TaskStatus;
  createdAt: string;
  createdAtMs: number;
  /** Deadline from submission (queue + run), when the caller gave one. */
  timeoutSeconds?: number;
  /** What the agent gets when no deadline is set. */
  runTimeoutSeconds: number;
  attempts: number;
  nodeId?: string;
  slot?: number;
  assignedAtMs?: number;
  runCommandId?: string;
  /** The placement that put it on its node switched the node's model. */
  switchedModel?: boolean;
  startedAt?: string;
  startedAtMs?: number;
  /** First progress >= 30: the agent's model server answered (load time = this - start). */
  serverReadyAtMs?: number;
  completedAt?: string;
  completedAtMs?: number;
  progress: number;
  result?: Record<string, unknown>;
  error?: string;
  /** Output file names (under blobs `outputs/`). */
  outputs?: string[];
  /** Nodes it was taken off (offline, restart), oldest first. */
  requeuedFrom?: string[];
  /** In the task counters since its submit (task-counts.ts); tasks stored before them are not. */
  counted?: boolean;
  /** In the queue's per-second counts since its submit (queue-position.ts); tasks stored before them are not. */
  queueCounted?: boolean;
}

/** The task.cancel of the task's current run: it never stops a later run of the same task. */
export const cancelRun = (task: TaskItem): Extract<Command, { type: 'task.cancel' }> => ({
  type: 'task.cancel',
  taskId: task.taskId,
  ...(task.runCommandId !== undefined ? { runCommandId: task.runCommandId } : {}),
});
