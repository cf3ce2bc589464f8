import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { queryAll } from '../ports/store.js';
import { countCacheLookup, readCounters } from '../observability/counters.js';
import type { MigrationItem } from './migration-model.js';
import type { NovitaInstanceItem } from './model.js';
import { INSTANCE_STATUSES } from './status.js';

/** A cache lookup, counted with the control plane's other counters. */
export async function noteCache(ctx: AppContext, hit: boolean): Promise<void> {
  await countCacheLookup(ctx, hit).catch((error: unknown) =>
    ctx.logger.warn('cache count failed', { error: error as Error }),
  );
}

const MB = 1024 * 1024;

/**
 * GET /api/metrics, from the stored counters (every API request, by route and status, as /metrics
 * shows them) and the stored instances and executions.
 */
export async function computeMetrics(ctx: AppContext) {
  const [counters, instances, executions] = await Promise.all([
    readCounters(ctx),
    queryAll<NovitaInstanceItem>(ctx.store, novitaKeys.instancesPk, { index: 'gsi1' }),
    queryAll<MigrationItem>(ctx.store, novitaKeys.migrationsPk, { index: 'gsi1' }),
  ]);
  const byStatus = Object.fromEntries(INSTANCE_STATUSES.map((s) => [s, 0])) as Record<string, number>;
  for (const i of instances) byStatus[i.status] = (byStatus[i.status] ?? 0) + 1;
  const execCount = (s: string) => executions.filter((e) => e.status === s).length;
  // Jobs: migration executions plus each instance's startup watch (pending until Novita has it).
  const watching = instances.filter((i) => i.status === 'creating' || i.status === 'starting');
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
    instances: { total: instances.length, ...byStatus },
    jobs: {
      pending: execCount('queued') + watching.filter((i) => !i.novitaInstanceId).length,
      processing: execCount('running') + watching.filter((i) => !!i.novitaInstanceId).length,
      completed: execCount('completed') + instances.filter((i) => !!i.readyAt).length,
      failed: execCount('failed') + byStatus.failed!,
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
