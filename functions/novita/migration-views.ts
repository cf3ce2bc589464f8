import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { queryAll } from '../ports/store.js';
import type { ExecutionStatus, MigrationItem, MigrationStats } from './migration-model.js';

/** What the migration API and /health show of past and next executions. */

function nextExecution(ctx: AppContext, lastScheduled?: MigrationItem): string | null {
  if (!ctx.config.NOVITA_MIGRATION_ENABLED) return null;
  const period = ctx.config.NOVITA_MIGRATION_INTERVAL_MINUTES * 60_000;
  const now = ctx.now();
  if (!lastScheduled) return new Date(Math.ceil((now + 1) / period) * period).toISOString();
  const base = Date.parse(lastScheduled.queuedAt);
  const steps = Math.max(1, Math.ceil((now - base) / period));
  return new Date(base + steps * period).toISOString();
}

export function executionView(e: MigrationItem) {
  return {
    jobId: e.jobId,
    status: e.status,
    triggeredBy: e.triggeredBy,
    dryRun: e.dryRun,
    queuedAt: e.queuedAt,
    startedAt: e.startedAt ?? null,
    completedAt: e.completedAt ?? null,
    duration: e.duration ?? null,
    summary: e.summary ?? {
      totalInstances: 0,
      exitedInstances: 0,
      eligibleInstances: 0,
      migratedInstances: 0,
      skippedInstances: 0,
      errorCount: 0,
    },
    errors: e.errors,
    ...(e.plan ? { plan: e.plan } : {}),
    ...(e.migrations ? { migrations: e.migrations } : {}),
  };
}

async function recentExecutions(ctx: AppContext, limit: number): Promise<MigrationItem[]> {
  const page = await ctx.store.query<MigrationItem>(novitaKeys.migrationsPk, {
    index: 'gsi1',
    ascending: false,
    limit,
  });
  return page.items;
}

export async function migrationStatus(ctx: AppContext) {
  const s = novitaKeys.stats('MIGRATIONS');
  const [stats, recent] = await Promise.all([
    ctx.store.get<MigrationStats>(s.pk, s.sk),
    recentExecutions(ctx, 50),
  ]);
  const last = recent[0];
  const lastScheduled = recent.find((e) => e.triggeredBy === 'schedule');
  const total = stats?.totalExecutions ?? 0;
  return {
    enabled: ctx.config.NOVITA_MIGRATION_ENABLED,
    lastExecution: last
      ? {
          jobId: last.jobId,
          startedAt: last.startedAt ?? null,
          completedAt: last.completedAt ?? null,
          duration: last.duration ?? null,
          status: last.status,
        }
      : null,
    nextExecution: nextExecution(ctx, lastScheduled),
    statistics: {
      totalExecutions: total,
      successfulExecutions: stats?.successfulExecutions ?? 0,
      failedExecutions: stats?.failedExecutions ?? 0,
      totalInstancesProcessed: stats?.totalInstancesProcessed ?? 0,
      totalMigrations: stats?.totalMigrations ?? 0,
      averageExecutionTime: total ? Math.round((stats?.totalDurationMs ?? 0) / total) : 0,
    },
    configuration: {
      intervalMinutes: ctx.config.NOVITA_MIGRATION_INTERVAL_MINUTES,
      maxConcurrent: ctx.config.NOVITA_MIGRATION_MAX_CONCURRENT,
      dryRunMode: ctx.config.NOVITA_MIGRATION_DRY_RUN,
      retryFailed: ctx.config.NOVITA_MIGRATION_RETRY_FAILED,
    },
  };
}

export async function migrationHistory(
  ctx: AppContext,
  q: { limit: number; offset: number; status?: ExecutionStatus },
): Promise<{ items: MigrationItem[]; total: number }> {
  const all = q.status
    ? await queryAll<MigrationItem>(ctx.store, novitaKeys.migrationStatusPk(q.status), {
        index: 'gsi2',
        ascending: false,
      })
    : await queryAll<MigrationItem>(ctx.store, novitaKeys.migrationsPk, { index: 'gsi1', ascending: false });
  return { items: all.slice(q.offset, q.offset + q.limit), total: all.length };
}

/** The `migrationService` block of /health. */
export async function migrationHealth(ctx: AppContext) {
  const recent = await recentExecutions(ctx, 50);
  const finished = recent.find((e) => e.status === 'completed' || e.status === 'failed');
  const dayAgo = ctx.now() - 86_400_000;
  const recentErrors = recent
    .filter((e) => Date.parse(e.queuedAt) >= dayAgo)
    .reduce((n, e) => n + (e.summary?.errorCount ?? (e.status === 'failed' ? 1 : 0)), 0);
  const enabled = ctx.config.NOVITA_MIGRATION_ENABLED;
  return {
    enabled,
    lastExecution: finished?.completedAt ?? null,
    nextExecution: nextExecution(
      ctx,
      recent.find((e) => e.triggeredBy === 'schedule'),
    ),
    status: !enabled ? 'disabled' : finished?.status === 'failed' ? 'degraded' : 'healthy',
    recentErrors,
  };
}
