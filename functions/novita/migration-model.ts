import type { StoreItem } from '../ports/store.js';

/** The records of spot migration: one item per execution, and the running totals. */

export type ExecutionStatus = 'queued' | 'running' | 'completed' | 'failed';

export interface MigrationSummary {
  totalInstances: number;
  exitedInstances: number;
  eligibleInstances: number;
  migratedInstances: number;
  skippedInstances: number;
  errorCount: number;
}

export interface MigrationItem extends StoreItem {
  jobId: string;
  status: ExecutionStatus;
  triggeredBy: 'schedule' | 'manual';
  dryRun: boolean;
  maxMigrations?: number;
  queuedAt: string;
  startedAt?: string;
  completedAt?: string;
  duration?: number;
  summary?: MigrationSummary;
  errors: { instanceId?: string; code: string; message: string }[];
  /** Dry runs: what a real run would migrate. */
  plan?: { instanceId: string; novitaInstanceId: string; name: string }[];
  migrations?: { instanceId: string; newInstanceId: string }[];
}

export interface MigrationStats extends StoreItem {
  totalExecutions?: number;
  successfulExecutions?: number;
  failedExecutions?: number;
  totalInstancesProcessed?: number;
  totalMigrations?: number;
  totalDurationMs?: number;
}
