import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { queryAll } from '../ports/store.js';
import { countCacheLookup, readCounters } from '../observability/counters.js';
import { instanceCounts } from './live-index.js';
import type { MigrationItem, MigrationStats } from './migration-model.js';
import { INSTANCE_STATUSES } from './status.js';

/** A cache lookup, counted with the control plane's other counters. */
export async function noteCache(ctx: AppContext, hit: boolean): Promise<void> {
  await countCacheLookup(ctx, hit).catch((error: unknown) =>
    ctx.logger.warn('cache count failed', { error: error as Error }),
  );
}

const MB = 1024 * 1024;

/**
 * GET /api/metrics, from stored counters only: every API request by route and status (as /metrics
 * shows them), the instance counts (live-index.ts), the migration totals and the executions queued
 * or running. Reads do not grow with the instances or executions ever stored.
 */
export async function computeMetrics(ctx: AppContext) {
  const s = novitaKeys.stats('MIGRATIONS');
  const [counters, counts, stats, queued, running] = await Promise.all([
    readCounters(ctx),
    instanceCounts(ctx),
    ctx.store.get<MigrationStats>(s.pk, s.sk),
    queryAll<MigrationItem>(ctx.store, novitaKeys.migrationStatusPk('queued'), { index: 'gsi2' }),
    queryAll<MigrationItem>(ctx.store, novitaKeys.migrationStatusPk('running'), { index: 'gsi2' }),
  ]);
  const byStatus = Object.fromEntries(INSTANCE_STATUSES.map((st) => [st, counts[st]]));
  let total = 0;
  let failed = 0;
  let durationMs = 0;
  for (const r of counters.http) {
    for (const [status, count] of r.byStatus) {
      total += count;
      if (status >= 400) failed += count;
    }
    durationMs += r.durationMs;
  }
  const { hits, misses } = counters.novitaCache;
  const mem = process.memoryUsage();
  return {
    requests: {
      total,
      successful: total - failed,
      failed,
      averageResponseTime: total ? Math.round(durationMs / total) : 0,
    },
    instances: { total: counts.total, ...byStatus },
    // Jobs: migration executions plus each instance's startup watch (pending until Novita has it).
    jobs: {
      pending: queued.length + counts.watching,
      processing: running.length + counts.watchingAtNovita,
      completed: (stats?.successfulExecutions ?? 0) + counts.ready,
      failed: (stats?.failedExecutions ?? 0) + counts.failed,
    },
    cache: { hits, misses, hitRate: hits + misses ? Math.round((hits / (hits + misses)) * 100) / 100 : 0 },
    system: {
      uptime: Math.floor((ctx.now() - ctx.startedAt) / 1000),
      memoryUsage: {
        used: Math.round(mem.heapUsed / MB),
        total: Math.round(mem.heapTotal / MB),
        percentage: mem.heapTotal ? Math.round((mem.heapUsed / mem.heapTotal) * 100) : 0,
      },
    },
  };
}
