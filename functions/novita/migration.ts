import { randomBytes } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError } from '../core/errors.js';
import { emit } from '../core/events.js';
import { novitaKeys } from '../core/keys.js';
import { acquireLease, heldLease, releaseLease, type LeaseSpec } from '../core/lease.js';
import { conditional, updateIf } from '../ports/store.js';
import type { NovitaInstance } from '../ports/novita-cloud.js';
import type { ExecutionStatus, MigrationItem, MigrationSummary } from './migration-model.js';
import { POLL_EVENT } from './model.js';
import { isoNow, statusFields, type NovitaInstanceItem } from './model.js';
import { liveInstances, markLive, retireInstance, syncLive } from './live-index.js';
import { novitaCloud } from './settings.js';
import { setCordon } from '../nodes/nodes.js';
import { terminateInstance } from './join.js';
import { isSpotReclaimed, mapNovitaStatus } from './status.js';

/**
 * Spot migration. One execution at a time: the lock item is written with attribute_not_exists
 * when a run is queued (manual trigger or the schedule) and deleted by its holder when the run
 * ends; a holder that died is replaced once its lease is over. Each instance is claimed with a
 * conditional write on its version before Novita's migrate is called, so two runs never
 * migrate one instance twice, and a migrated instance carries `migratedTo` for good.
 */

export const RUN_EVENT = 'novita.migration.run';
const LEASE_MS = 15 * 60_000;
const PAGE_SIZE = 100;
/** An instance Novita's complete list lacks is retired once this old (a new one may not be listed yet). */
const GONE_AFTER_MS = 60 * 60_000;
const MAX_PAGES = 100;
/** Executions are kept this long (TTL). */
const KEEP_S = 30 * 86_400;

/** One execution at a time; a holder silent past the lease died. */
const LOCK: LeaseSpec = { key: novitaKeys.migrationLock(), field: 'jobId', leaseMs: LEASE_MS };

const acquireLock = (ctx: AppContext, jobId: string) => acquireLease(ctx, LOCK, jobId);
const releaseLock = (ctx: AppContext, jobId: string) => releaseLease(ctx, LOCK, jobId);

export async function migrationInFlight(ctx: AppContext): Promise<string | undefined> {
  const held = await heldLease(ctx, LOCK);
  return held ? String(held['jobId']) : undefined;
}

async function setExecution(ctx: AppContext, exec: MigrationItem, set: Partial<MigrationItem>, from: ExecutionStatus[]) {
  const status = set.status ?? exec.status;
  const idx = novitaKeys.migrationIndexes(exec.queuedAt, exec.jobId, status);
  return ctx.store.update<MigrationItem>(
    exec.pk,
    exec.sk,
    { set: { ...set, gsi2pk: idx.gsi2pk, gsi2sk: idx.gsi2sk } },
    { equals: { status: from } },
  );
}

/** Queues one execution (POST /api/migration/trigger and the schedule). 409 while one is in flight. */
export async function triggerMigration(
  ctx: AppContext,
  options: { dryRun: boolean; maxMigrations?: number; triggeredBy: 'schedule' | 'manual' },
) {
  const jobId = `migration-job-${randomBytes(6).toString('hex')}`;
  const holder = await acquireLock(ctx, jobId);
  if (holder) {
    throw new ConflictError('A migration job is already in progress', 'MIGRATION_JOB_CONFLICT', { runningJobId: holder });
  }
  const queuedAt = isoNow(ctx);
  const exec: MigrationItem = {
    ...novitaKeys.migration(jobId),
    ...novitaKeys.migrationIndexes(queuedAt, jobId, 'queued'),
    version: 1,
    expiresAt: Math.floor(ctx.now() / 1000) + KEEP_S,
    jobId,
    status: 'queued',
    triggeredBy: options.triggeredBy,
    dryRun: options.dryRun,
    ...(options.maxMigrations !== undefined ? { maxMigrations: options.maxMigrations } : {}),
    queuedAt,
    errors: [],
  };
  try {
    await ctx.store.put(exec, { notExists: true });
    await emit(ctx, { type: RUN_EVENT, jobId });
  } catch (error) {
    // Nothing will run it: free the lock and record why, so the next trigger can go.
    await setExecution(ctx, exec, { status: 'failed', completedAt: isoNow(ctx), errors: [{ code: 'MIGRATION_ERROR', message: 'could not queue the job' }] }, ['queued']).catch(() => undefined);
    await releaseLock(ctx, jobId);
    throw error;
  }
  return {
    jobId,
    status: 'queued' as const,
    message: 'Migration job queued for execution',
    estimatedStartTime: new Date(ctx.now() + 1000).toISOString(),
    dryRun: options.dryRun,
  };
}

/** Novita's instances; `complete` when its last page was read (not cut at MAX_PAGES). */
async function listAllNovita(ctx: AppContext): Promise<{ all: NovitaInstance[]; complete: boolean }> {
  const cloud = novitaCloud(ctx);
  const all: NovitaInstance[] = [];
  for (let pageNum = 1; pageNum <= MAX_PAGES; pageNum++) {
    const page = await cloud.listInstances({ pageNum, pageSize: PAGE_SIZE });
    all.push(...page);
    if (page.length < PAGE_SIZE) return { all, complete: true };
  }
  return { all, complete: false };
}

/** Settled, past GONE_AFTER_MS, and not among Novita's instances: nothing will act on it again. */
const goneFromNovita = (ctx: AppContext, item: NovitaInstanceItem, listed: Set<string>) =>
  item.status !== 'creating' &&
  item.status !== 'starting' &&
  !(item.novitaInstanceId && listed.has(item.novitaInstanceId)) &&
  ctx.now() - Date.parse(item.createdAt) >= GONE_AFTER_MS;

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

type MigrateResult = { ok: true; newInstanceId: string } | { ok: false; skipped: true } | { ok: false; message: string };

async function migrateOne(ctx: AppContext, exec: MigrationItem, item: NovitaInstanceItem): Promise<MigrateResult> {
  const claim = item.migrationClaim;
  if (claim && claim.jobId !== exec.jobId && ctx.now() - Date.parse(claim.at) < LEASE_MS) return { ok: false, skipped: true };
  const claimed = await updateIf<NovitaInstanceItem>(
    ctx.store,
    item.pk,
    item.sk,
    { set: { migrationClaim: { jobId: exec.jobId, at: isoNow(ctx) } } },
    { version: item.version ?? 0, absent: ['migratedTo'] },
  );
  if (!claimed) return { ok: false, skipped: true };
  item = claimed;
  let newNovitaId: string;
  try {
    ({ id: newNovitaId } = await novitaCloud(ctx).migrateInstance(item.novitaInstanceId!));
  } catch (error) {
    await ctx.store.update(item.pk, item.sk, {
      remove: ['migrationClaim'],
      ...(ctx.config.NOVITA_MIGRATION_RETRY_FAILED ? {} : { set: { migrationFailedAt: isoNow(ctx) } }),
    });
    return { ok: false, message: (error as Error).message };
  }
  const newId = `inst-${randomBytes(6).toString('hex')}`;
  const now = isoNow(ctx);
  const fresh: NovitaInstanceItem = {
    ...novitaKeys.instance(newId),
    ...novitaKeys.instanceIndexes(now, newId, 'starting'),
    version: 1,
    instanceId: newId,
    name: item.name,
    status: 'starting',
    novitaInstanceId: newNovitaId,
    productId: item.productId,
    productName: item.productName,
    templateId: item.templateId,
    gpuNum: item.gpuNum,
    rootfsSize: item.rootfsSize,
    region: item.region,
    billingMode: item.billingMode,
    price: item.price,
    ...(item.webhookUrl ? { webhookUrl: item.webhookUrl } : {}),
    createdAt: now,
    originalInstanceId: item.instanceId,
    migration: {
      jobId: exec.jobId,
      reason: 'spot_reclaim',
      triggeredBy: exec.triggeredBy === 'schedule' ? 'automatic_migration' : 'manual_trigger',
      startedAt: now,
    },
  };
  await markLive(ctx, fresh);
  await ctx.store.put(fresh, { notExists: true });
  const away = await ctx.store.update<NovitaInstanceItem>(item.pk, item.sk, {
    set: { migratedTo: newId, ...(item.retiredAt ? {} : { retiredAt: now }) },
    remove: ['migrationClaim'],
  });
  await retireInstance(ctx, away);
  await emit(ctx, { type: POLL_EVENT, instanceId: newId }, ctx.config.NOVITA_POLL_SECONDS);
  ctx.logger.info('novita instance migrated', { instanceId: item.instanceId, newInstanceId: newId, jobId: exec.jobId });
  return { ok: true, newInstanceId: newId };
}

/** The `novita.migration.run` event. Idempotent: a finished execution is left alone. */
export async function runMigration(ctx: AppContext, jobId: string): Promise<void> {
  const k = novitaKeys.migration(jobId);
  let exec = await ctx.store.get<MigrationItem>(k.pk, k.sk);
  if (!exec || exec.status === 'completed' || exec.status === 'failed') return;
  const startedAt = exec.startedAt ?? isoNow(ctx);
  exec = await setExecution(ctx, exec, { status: 'running', startedAt }, ['queued', 'running']);
  const summary: MigrationSummary = {
    totalInstances: 0,
    exitedInstances: 0,
    eligibleInstances: 0,
    migratedInstances: 0,
    skippedInstances: 0,
    errorCount: 0,
  };
  const errors: MigrationItem['errors'] = [];
  const plan: NonNullable<MigrationItem['plan']> = [];
  const migrations: NonNullable<MigrationItem['migrations']> = [];
  let fatal: string | undefined;
  try {
    // The live records only (live-index.ts): terminated and migrated-away ones are never acted on.
    const [{ all: novita, complete }, managed] = await Promise.all([listAllNovita(ctx), liveInstances(ctx)]);
    if (complete && !exec.dryRun) {
      const listed = new Set(novita.map((n) => n.id));
      for (const m of managed) if (goneFromNovita(ctx, m, listed)) await retireInstance(ctx, m);
    }
    // Novita id → the live record (a migrated-away record keeps the old id too).
    const byNovitaId = new Map<string, NovitaInstanceItem>();
    for (const m of managed) if (m.novitaInstanceId && !m.migratedTo) byNovitaId.set(m.novitaInstanceId, m);
    const eligible: NovitaInstanceItem[] = [];
    for (const n of novita) {
      summary.totalInstances++;
      let item = byNovitaId.get(n.id);
      if (item && !exec.dryRun) item = await refreshStatus(ctx, item, n);
      if (n.status !== 'exited') continue;
      summary.exitedInstances++;
      if (item?.joinFleet) {
        // A fleet node: what ran there moves to another node; the instance is not migrated
        // (a migration keeps no new data on the system disk, the agent's registration included).
        if (item.nodeId && isSpotReclaimed(n) && !exec.dryRun) await reportReclaim(ctx, item);
        summary.skippedInstances++;
        continue;
      }
      const ok =
        item &&
        isSpotReclaimed(n) &&
        (ctx.config.NOVITA_MIGRATION_RETRY_FAILED || !item.migrationFailedAt) &&
        item.status !== 'creating' &&
        item.status !== 'starting';
      if (!ok || !item) {
        summary.skippedInstances++;
        continue;
      }
      summary.eligibleInstances++;
      eligible.push(item);
    }
    const limit = exec.maxMigrations ?? Number.POSITIVE_INFINITY;
    const chosen = eligible.slice(0, limit);
    summary.skippedInstances += eligible.length - chosen.length;
    if (exec.dryRun) {
      for (const i of chosen) plan.push({ instanceId: i.instanceId, novitaInstanceId: i.novitaInstanceId!, name: i.name });
    } else {
      await mapLimit(chosen, ctx.config.NOVITA_MIGRATION_MAX_CONCURRENT, async (item) => {
        const r = await migrateOne(ctx, exec!, item).catch((error: unknown) => ({ ok: false as const, message: (error as Error).message }));
        if (r.ok) {
          summary.migratedInstances++;
          migrations.push({ instanceId: item.instanceId, newInstanceId: r.newInstanceId });
        } else if ('skipped' in r) {
          summary.skippedInstances++;
        } else {
          summary.errorCount++;
          errors.push({ instanceId: item.instanceId, code: 'MIGRATION_ERROR', message: r.message });
        }
      });
    }
  } catch (error) {
    fatal = (error as Error).message;
    summary.errorCount++;
    errors.push({ code: 'MIGRATION_ERROR', message: fatal });
  }
  const failed = !!fatal || (summary.errorCount > 0 && summary.migratedInstances === 0);
  const completedAt = isoNow(ctx);
  const duration = Date.parse(completedAt) - Date.parse(startedAt);
  try {
    // Undefined when another delivery finished it first.
    const finished = await conditional(
      setExecution(
        ctx,
        exec,
        {
          status: failed ? 'failed' : 'completed',
          completedAt,
          duration,
          summary,
          errors,
          ...(exec.dryRun ? { plan } : { migrations }),
        },
        ['running'],
      ),
    );
    const s = novitaKeys.stats('MIGRATIONS');
    if (finished)
      await ctx.store.update(
        s.pk,
        s.sk,
        {
          add: {
            totalExecutions: 1,
            successfulExecutions: failed ? 0 : 1,
            failedExecutions: failed ? 1 : 0,
            totalInstancesProcessed: summary.totalInstances,
            totalMigrations: summary.migratedInstances,
            totalDurationMs: duration,
          },
        },
        {},
      );
  } finally {
    await releaseLock(ctx, jobId);
  }
  ctx.logger.info('novita migration finished', { jobId, dryRun: exec.dryRun, ...summary });
}

/** Keeps a settled instance's status in line with Novita (starting ones belong to the poller). */
async function refreshStatus(ctx: AppContext, item: NovitaInstanceItem, n: NovitaInstance): Promise<NovitaInstanceItem> {
  const mapped = mapNovitaStatus(n.status);
  if (!mapped || item.status === 'creating' || item.status === 'starting' || item.status === 'failed') return item;
  if (mapped === 'creating' || mapped === 'starting') return item;
  if (mapped === item.status && item.novitaStatus === n.status) return item;
  const refreshed = await updateIf<NovitaInstanceItem>(
    ctx.store,
    item.pk,
    item.sk,
    { set: { ...statusFields(item, mapped), novitaStatus: n.status } },
    { equals: { status: item.status } },
  );
  if (refreshed) await syncLive(ctx, refreshed);
  // Changed meanwhile: the claim's version check will see the current item.
  return refreshed ?? (await ctx.store.get<NovitaInstanceItem>(item.pk, item.sk)) ?? item;
}

/** Once per instance: the reclaim goes to the areas that had work on its node. */
async function reportReclaim(ctx: AppContext, item: NovitaInstanceItem): Promise<void> {
  if (!(await updateIf(ctx.store, item.pk, item.sk, { set: { reclaimedAt: isoNow(ctx) } }, { absent: ['reclaimedAt'] })))
    return;
  ctx.logger.warn('a fleet node’s spot instance was reclaimed', { instanceId: item.instanceId, nodeId: item.nodeId });
  // Its heartbeats may linger a moment: nothing new is placed there meanwhile.
  await setCordon(ctx, item.nodeId!, { cordoned: true });
  await emit(ctx, { type: 'cloud.instance.reclaimed', instanceId: item.instanceId, nodeId: item.nodeId! });
  // A burst's instance is given back at once; the run rents another if it still needs one.
  if (item.burstFor || item.burstModel) await terminateInstance(ctx, item, 'spot reclaim');
}
