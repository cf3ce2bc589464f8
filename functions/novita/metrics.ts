import type { AppContext } from '../core/context.js';
import { novitaKeys } from '../core/keys.js';
import { queryAll, type StoreItem } from '../ports/store.js';
import type { MigrationItem } from './migration-model.js';
import type { NovitaInstanceItem } from './model.js';
import { INSTANCE_STATUSES } from './status.js';

interface RequestStats extends StoreItem {
  total?: number;
  successful?: number;
  failed?: number;
  durationMs?: number;
  cacheHits?: number;
  cacheMisses?: number;
}

/** Cache lookups since the last flush; they ride on the next request count write. */
const pendingCache = new WeakMap<AppContext, { hits: number; misses: number }>();

export function noteCache(ctx: AppContext, hit: boolean): void {
  const p = pendingCache.get(ctx) ?? { hits: 0, misses: 0 };
  if (hit) p.hits++;
  else p.misses++;
  pendingCache.set(ctx, p);
}

/** One atomic counter update per request to a Novita route (every Lambda adds to the same item). */
export async function countRequest(ctx: AppContext, status: number, durationMs: number): Promise<void> {
  const cache = pendingCache.get(ctx) ?? { hits: 0, misses: 0 };
  pendingCache.delete(ctx);
  const ok = status < 400;
  const k = novitaKeys.stats('REQUESTS');
  try {
    await ctx.store.update(
      k.pk,
      k.sk,
      {
        add: {
          total: 1,
          successful: ok ? 1 : 0,
          failed: ok ? 0 : 1,
          durationMs: Math.max(0, Math.round(durationMs)),
          cacheHits: cache.hits,
          cacheMisses: cache.misses,
        },
      },
      {},
    );
  } catch (error) {
    // Put the cache counts back so the next write carries them.
    const p = pendingCache.get(ctx) ?? { hits: 0, misses: 0 };
    pendingCache.set(ctx, { hits: p.hits + cache.hits, misses: p.misses + cache.misses });
    throw error;
  }
}

const MB = 1024 * 1024;

/** GET /api/metrics, from the counters and the stored instances and executions. */
export async function computeMetrics(ctx: AppContext) {
  const k = novitaKeys.stats('REQUESTS');
  const [stats, instances, executions] = await Promise.all([
    ctx.store.get<RequestStats>(k.pk, k.sk),
    queryAll<NovitaInstanceItem>(ctx.store, novitaKeys.instancesPk, { index: 'gsi1' }),
    queryAll<MigrationItem>(ctx.store, novitaKeys.migrationsPk, { index: 'gsi1' }),
  ]);
  const byStatus = Object.fromEntries(INSTANCE_STATUSES.map((s) => [s, 0])) as Record<string, number>;
  for (const i of instances) byStatus[i.status] = (byStatus[i.status] ?? 0) + 1;
  const execCount = (s: string) => executions.filter((e) => e.status === s).length;
  // Jobs: migration executions plus each instance's startup watch (pending until Novita has it).
  const watching = instances.filter((i) => i.status === 'creating' || i.status === 'starting');
  const total = stats?.total ?? 0;
  const hits = stats?.cacheHits ?? 0;
  const misses = stats?.cacheMisses ?? 0;
  const mem = process.memoryUsage();
  return {
    requests: {
      total,
      successful: stats?.successful ?? 0,
      failed: stats?.failed ?? 0,
      averageResponseTime: total ? Math.round((stats?.durationMs ?? 0) / total) : 0,
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
