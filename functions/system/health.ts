import type { AppContext } from '../core/context.js';
import { VERSION } from '../core/version.js';
import { migrationHealth, novitaApiProbe } from '../novita/health.js';

/** `not_configured`: an optional dependency with no settings (Novita without a key); not a failure. */
export type DependencyState = 'healthy' | 'unhealthy' | 'not_configured';

export interface MigrationServiceHealth {
  enabled: boolean;
  lastExecution: string | null;
  nextExecution: string | null;
  status: string;
  recentErrors: number;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  timestamp: string;
  uptime: number;
  version: string;
  service: string;
  database_connected: boolean;
  dependencies: Record<string, DependencyState>;
  /** Novita spot migration (the Novita document's health body). */
  migrationService?: MigrationServiceHealth;
  errors?: Record<string, string>;
}

const PROBE_TIMEOUT_MS = 3000;

async function probe(fn: () => Promise<void>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
      }),
    ]);
    return undefined;
  } catch (error) {
    return (error as Error).message || String(error);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The union of the four documented /health bodies: every dependency is actually called, and
 * one failure makes the whole report unhealthy (503).
 */
export async function checkHealth(ctx: AppContext): Promise<HealthReport> {
  const novita = await novitaApiProbe(ctx).catch(() => undefined);
  const probes: Record<string, () => Promise<void>> = {
    database: () => ctx.store.ping(),
    queue: () => ctx.queue.ping(),
    scheduler: () => ctx.scheduler.ping(),
    artifacts: () => ctx.blobs.ping(),
    ...(novita ? { novitaApi: novita } : {}),
    ...ctx.probes,
  };
  const names = Object.keys(probes);
  const results = await Promise.all(names.map((n) => probe(probes[n]!)));
  const dependencies: Record<string, DependencyState> = {};
  const errors: Record<string, string> = {};
  names.forEach((name, i) => {
    dependencies[name] = results[i] === undefined ? 'healthy' : 'unhealthy';
    if (results[i] !== undefined) errors[name] = results[i]!;
  });
  if (!novita && !('novitaApi' in dependencies)) dependencies.novitaApi = 'not_configured';
  // The Novita document's cache of instance state is the table: it is as healthy as the table.
  dependencies.cache = dependencies.database!;
  const healthy = Object.values(dependencies).every((d) => d !== 'unhealthy');
  // Informational: a failed migration run does not make the API unhealthy.
  const migrationService = await migrationHealth(ctx).catch(() => undefined);
  if (!healthy) ctx.logger.warn('health check failed', { errors });
  return {
    status: healthy ? 'healthy' : 'unhealthy',
    timestamp: new Date(ctx.now()).toISOString(),
    uptime: Math.floor((ctx.now() - ctx.startedAt) / 1000),
    version: VERSION,
    service: ctx.config.SERVICE_NAME,
    database_connected: dependencies.database === 'healthy',
    dependencies,
    ...(migrationService ? { migrationService } : {}),
    ...(healthy ? {} : { errors }),
  };
}
