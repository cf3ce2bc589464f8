import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { keys, trainingKeys } from '../core/keys.js';
import type { InstanceResources } from '../orchestrator/resources.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import type { JobStatus } from './state.js';
import type { CloudBurst } from './schemas.js';

/** `train-` and 8 hex digits, as the API documents (`train-a1b2c3d4`). */
export const newJobId = () => `train-${randomBytes(4).toString('hex')}`;
export const JOB_ID_RE = /^train-[0-9a-f]{8}$/;

/**
 * Where the job's schedule stands relative to the scheduler: `pending` between the job write and
 * the schedule write (the repair sweep finishes it), `synced` after, `none` without a schedule.
 */
export type ScheduleState = 'none' | 'pending' | 'synced';

export interface JobItem extends StoreItem {
  jobId: string;
  name: string;
  image: string;
  command: string[];
  schedule: string | null;
  timezone: string;
  maxRetries: number;
  retryCount: number;
  checkpointPath: string | null;
  resources: InstanceResources;
  env: Record<string, string>;
  status: JobStatus;
  startedAt: string | null;
  completedAt: string | null;
  errorMessage: string | null;
  createdAt: string;
  updatedAt: string;
  scheduleState: ScheduleState;
  /** Bumped by every schedule change; marking `synced` is conditional on it. */
  scheduleRev: number;
  /** Bumped by every status change; notifications carry it so receivers can order them. */
  statusSeq: number;
  /** The firing the current (or last) run serves, ISO; firings are deduplicated on it. */
  currentSlot?: string;
  /** The run attempt the job is on (`<slot>#a001`), while and after it runs. */
  currentRun?: string;
  /** A firing asked for (create without schedule, POST /retry) and not yet claimed. */
  requestedSlot?: string;
  /** True from a firing's claim until its last attempt settles. */
  runActive: boolean;
  skippedFirings: number;
  /** Attempts ended by a rented node taken back: retried without counting against maxRetries. */
  preemptionCount?: number;
  /** Burst: rent a cloud instance that joins when the fleet has no room. */
  cloud?: CloudBurst;
  /** The instance rented for its current attempt (functions/training/burst.ts). */
  burstInstanceId?: string;
}

/**
 * One attempt of one firing. Keyed by firing time and attempt number, so the same firing
 * delivered twice, or the same exit reported twice, lands on the same item.
 */
export type RunStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';

export interface RunItem extends StoreItem {
  jobId: string;
  /** ISO firing time. */
  slot: string;
  attempt: number;
  /** Container identity on the node, also the public run id. */
  instanceId: string;
  status: RunStatus;
  /** Epoch ms before which the attempt must not start (retry backoff). */
  notBefore: number;
  nodeId?: string;
  startedAt?: string;
  endedAt?: string;
  exitCode?: number | null;
  logTail?: string;
  error?: string;
  /** Ended because its rented node was taken back. */
  preempted?: boolean;
  /** Why a pending run has not started yet (no node with the capacity). */
  waiting?: string;
  /** Epoch ms of the last placement try that found no node. */
  checkedAt?: number;
  /** What it reserves on its node while running (GPUs, CPUs, memory, disk). */
  reserve?: { gpus: number; cpu: number; memoryMb: number; diskGb: number };
  /** Nodes an earlier attempt failed on: chosen only when nothing else fits. */
  avoid?: string[];
  createdAt: string;
}

const pad = (n: number) => String(n).padStart(3, '0');
/** `2025-10-22T02:00:00.000Z` → `20251022020000000`. */
const compactSlot = (slot: string) => slot.replace(/\D/g, '');

export const runKey = (slot: string, attempt: number) => `${slot}#a${pad(attempt)}`;
export const runItemKey = (jobId: string, slot: string, attempt: number) =>
  keys.run(jobId, slot, `a${pad(attempt)}`);
export const skipItemKey = (jobId: string, slot: string) => keys.run(jobId, slot, 'skip');
export const instanceIdOf = (jobId: string, slot: string, attempt: number) =>
  `${jobId}-${compactSlot(slot)}-a${attempt}`;

/** The run an agent reports on, from the container's instance id; undefined for other containers. */
export function parseInstanceId(
  instanceId: string,
): { jobId: string; slot: string; attempt: number } | undefined {
  const m = /^(train-[0-9a-f]{8})-(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})-a(\d+)$/.exec(instanceId);
  if (!m) return undefined;
  const [, jobId, y, mo, d, h, mi, s, ms, attempt] = m;
  return { jobId: jobId!, slot: `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`, attempt: Number(attempt) };
}

export function parseRunKey(key: string): { slot: string; attempt: number } {
  const [slot, a] = key.split('#a') as [string, string];
  return { slot, attempt: Number(a) };
}

export async function getJob(ctx: AppContext, jobId: string): Promise<JobItem | undefined> {
  const k = keys.job(jobId);
  return ctx.store.get<JobItem>(k.pk, k.sk);
}

export async function getRun(
  ctx: AppContext,
  jobId: string,
  slot: string,
  attempt: number,
): Promise<RunItem | undefined> {
  const k = runItemKey(jobId, slot, attempt);
  return ctx.store.get<RunItem>(k.pk, k.sk);
}

/** Every run record of a job (attempts and skipped firings), oldest first. */
export async function jobRuns(ctx: AppContext, jobId: string): Promise<RunItem[]> {
  return queryAll<RunItem>(ctx.store, keys.job(jobId).pk, { prefix: trainingKeys.runPrefix });
}

/** Runs in flight on the whole fleet, or on one node. */
export async function activeRuns(ctx: AppContext, nodeId?: string): Promise<RunItem[]> {
  return queryAll<RunItem>(ctx.store, trainingKeys.activeRunsPk, {
    index: 'gsi1',
    ...(nodeId ? { prefix: `${nodeId}#` } : {}),
  });
}

/** The API writes times as naive UTC seconds (`2025-10-22T18:00:00`). */
export const apiTime = (iso: string | null | undefined): string | null => (iso ? iso.slice(0, 19) : null);

export function jobView(j: JobItem) {
  return {
    job_id: j.jobId,
    name: j.name,
    image: j.image,
    command: j.command,
    schedule: j.schedule,
    timezone: j.timezone,
    max_retries: j.maxRetries,
    retry_count: j.retryCount,
    checkpoint_path: j.checkpointPath,
    resources: j.resources,
    env: j.env,
    status: j.status,
    started_at: apiTime(j.startedAt),
    completed_at: apiTime(j.completedAt),
    error_message: j.errorMessage,
    created_at: apiTime(j.createdAt),
    updated_at: apiTime(j.updatedAt),
    skipped_firings: j.skippedFirings,
    cloud: j.cloud ?? null,
    preemption_count: j.preemptionCount ?? 0,
  };
}
export type JobView = ReturnType<typeof jobView>;

export function runView(r: RunItem) {
  return {
    run_id: r.status === 'skipped' ? `${r.jobId}-${compactSlot(r.slot)}-skipped` : r.instanceId,
    job_id: r.jobId,
    attempt: r.status === 'skipped' ? null : r.attempt,
    status: r.status,
    node_id: r.nodeId ?? null,
    scheduled_at: apiTime(r.slot),
    started_at: apiTime(r.startedAt),
    ended_at: apiTime(r.endedAt),
    exit_code: r.exitCode ?? null,
    error: r.error ?? null,
    waiting_reason: r.status === 'pending' ? (r.waiting ?? null) : null,
    log_tail: r.logTail ?? null,
    preempted: r.preempted === true,
  };
}
