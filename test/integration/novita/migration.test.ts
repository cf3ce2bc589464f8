import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMinute } from '../../../functions/minute.js';
import { createBody, eventually, startNovitaRig, webhookReceiver, type NovitaRig } from './harness.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('Novita spot migration (embedded runtime, fake Novita on loopback)', () => {
  let rig: NovitaRig;
  let hook: Awaited<ReturnType<typeof webhookReceiver>>;
  /** Managed and reclaimed (A), managed and exited normally (B). */
  let a: { id: string; novitaId: string };
  let b: { id: string; novitaId: string };

  const instance = async (id: string) => (await rig.api('GET', `/api/instances/${id}`)).body;
  const history = async (query = '') => (await rig.api('GET', `/api/migration/history${query}`)).body;

  async function runningInstance(name: string) {
    const res = await rig.api('POST', '/api/instances', createBody({ name, webhookUrl: hook.url }));
    expect(res.status).toBe(201);
    const id = res.body.instanceId as string;
    await eventually(async () => expect((await instance(id)).status).toBe('running'), 15_000);
    const novitaId = [...rig.fake.instances.values()].find((i) => i.name === name)!.id;
    return { id, novitaId };
  }

  /** Triggers, then waits until that execution has finished. */
  async function migrate(body: unknown) {
    const res = await rig.api('POST', '/api/migration/trigger', body);
    expect(res.status).toBe(202);
    return eventually(async () => {
      const e = (await history()).executions.find((x: { jobId: string }) => x.jobId === res.body.jobId);
      expect(['completed', 'failed']).toContain(e?.status);
      return e;
    }, 15_000);
  }

  beforeAll(async () => {
    rig = await startNovitaRig({ NOVITA_BILLING_MODE: 'spot' });
    hook = await webhookReceiver();
    a = await runningInstance('spot-a');
    b = await runningInstance('spot-b');
    rig.fake.reclaim(a.novitaId);
    Object.assign(rig.fake.instances.get(b.novitaId)!, { status: 'exited', spotReclaimTime: '0' });
    // Reclaimed too, but not created through this service: never touched.
    rig.fake.seed({ id: 'outsider', status: 'exited', spotStatus: 'reclaimed', spotReclaimTime: '1704067200' });
  });
  afterAll(async () => {
    await hook?.close();
    await rig?.stop();
  });

  it('runs from the minute schedule (no schedule of its own) and reports the service before any run', async () => {
    expect(await rig.rt.ctx.scheduler.get('novita-spot-migration')).toBeUndefined();
    expect(await rig.rt.ctx.scheduler.get('minute')).toMatchObject({ expression: 'rate(1 minute)' });
    const res = await rig.api('GET', '/api/migration/status');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      enabled: true,
      lastExecution: null,
      nextExecution: expect.stringMatching(ISO),
      statistics: {
        totalExecutions: 0,
        successfulExecutions: 0,
        failedExecutions: 0,
        totalInstancesProcessed: 0,
        totalMigrations: 0,
        averageExecutionTime: 0,
      },
      configuration: { intervalMinutes: 15, maxConcurrent: 5, dryRunMode: false, retryFailed: true },
    });
  });

  it.each([
    [{ dryRun: 'yes' }, 'dryRun'],
    [{ maxMigrations: 0 }, 'maxMigrations'],
    [{ maxMigrations: 2.5 }, 'maxMigrations'],
    [{ dryRun: true, force: true }, ''],
  ])('refuses trigger body %j with 400 and queues nothing', async (body, field) => {
    const before = (await history()).total as number;
    const res = await rig.api('POST', '/api/migration/trigger', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field } });
    expect((await history()).total).toBe(before);
  });

  it('plans in a dry run and changes nothing', async () => {
    const res = await rig.api('POST', '/api/migration/trigger', { dryRun: true });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      jobId: expect.stringMatching(/^migration-job-[0-9a-f]{12}$/),
      status: 'queued',
      message: 'Migration job queued for execution',
      estimatedStartTime: expect.stringMatching(ISO),
      dryRun: true,
    });
    const done = await eventually(async () => {
      const e = (await history()).executions[0];
      expect(e.status).toBe('completed');
      return e;
    }, 15_000);
    expect(done).toMatchObject({
      jobId: res.body.jobId,
      dryRun: true,
      startedAt: expect.stringMatching(ISO),
      completedAt: expect.stringMatching(ISO),
      duration: expect.any(Number),
      summary: { totalInstances: 3, exitedInstances: 3, eligibleInstances: 1, migratedInstances: 0, skippedInstances: 2, errorCount: 0 },
      errors: [],
      plan: [{ instanceId: a.id, novitaInstanceId: a.novitaId, name: 'spot-a' }],
    });
    expect(rig.fake.migrates()).toHaveLength(0);
    expect(await instance(a.id)).toMatchObject({ status: 'running' });
    expect((await instance(a.id)).migratedTo).toBeUndefined();
  });

  it('migrates the reclaimed spot instance, answers 409 while it runs, and sends instance.migrated', async () => {
    rig.fake.migrateDelayMs = 1500;
    try {
      const first = await rig.api('POST', '/api/migration/trigger', {});
      expect(first.status).toBe(202);
      const second = await rig.api('POST', '/api/migration/trigger', { dryRun: true });
      expect(second.status).toBe(409);
      expect(second.body.error).toMatchObject({
        code: 'MIGRATION_JOB_CONFLICT',
        message: 'A migration job is already in progress',
        details: { runningJobId: first.body.jobId },
        requestId: second.headers.get('x-request-id'),
      });
      const done = await eventually(async () => {
        const e = (await history()).executions.find((x: { jobId: string }) => x.jobId === first.body.jobId);
        expect(e.status).toBe('completed');
        return e;
      }, 15_000);
      expect(done.summary).toEqual({
        totalInstances: 3,
        exitedInstances: 3,
        eligibleInstances: 1,
        migratedInstances: 1,
        skippedInstances: 2,
        errorCount: 0,
      });
      expect(rig.fake.migrates().map((r) => r.body)).toEqual([{ instanceId: a.novitaId }]);
      const newId = done.migrations[0].newInstanceId as string;
      expect(done.migrations).toEqual([{ instanceId: a.id, newInstanceId: newId }]);
      // The reclaimed record stays, pointing at its successor; the other exited one is refreshed.
      expect(await instance(a.id)).toMatchObject({ status: 'exited', migratedTo: newId });
      expect(await instance(b.id)).toMatchObject({ status: 'exited' });
      const fresh = await eventually(async () => {
        const got = await instance(newId);
        expect(got.status).toBe('running');
        return got;
      }, 15_000);
      expect(fresh).toMatchObject({ name: 'spot-a', originalInstanceId: a.id, readyAt: expect.stringMatching(ISO) });
      const migrated = await eventually(async () => {
        const m = hook.received.map((r) => JSON.parse(r.body)).find((p) => p.event === 'instance.migrated');
        expect(m).toBeDefined();
        return m;
      }, 10_000);
      expect(migrated).toEqual({
        event: 'instance.migrated',
        instanceId: newId,
        originalInstanceId: a.id,
        status: 'running',
        timestamp: fresh.readyAt,
        migration: { reason: 'spot_reclaim', triggeredBy: 'manual_trigger', migrationTime: expect.any(Number) },
        instance: { id: newId, name: 'spot-a', connectionDetails: fresh.connectionDetails },
      });
      expect(migrated.migration.migrationTime).toBeGreaterThanOrEqual(0);
    } finally {
      rig.fake.migrateDelayMs = 0;
    }
  });

  it('never migrates an instance twice', async () => {
    const done = await migrate({});
    expect(done.summary).toMatchObject({ migratedInstances: 0, eligibleInstances: 0, errorCount: 0 });
    expect(rig.fake.instances.get(a.novitaId)!.migrations).toBe(1);
  });

  it('records a failed migrate call, leaves the instance claimable, and migrates it on the next run', async () => {
    const c = await runningInstance('spot-c');
    rig.fake.reclaim(c.novitaId);
    rig.fake.failMigrateNext = 1;
    const failed = await migrate({});
    expect(failed.status).toBe('failed');
    expect(failed.summary).toMatchObject({ eligibleInstances: 1, migratedInstances: 0, errorCount: 1 });
    expect(failed.errors).toEqual([{ instanceId: c.id, code: 'MIGRATION_ERROR', message: expect.stringContaining('migration backend busy') }]);
    expect((await instance(c.id)).migratedTo).toBeUndefined();
    const retried = await migrate({ maxMigrations: 1 });
    expect(retried.status).toBe('completed');
    expect(retried.summary).toMatchObject({ migratedInstances: 1, errorCount: 0 });
    expect((await instance(c.id)).migratedTo).toBe(retried.migrations[0].newInstanceId);
  });

  it('runs from the minute schedule on a 15th minute as an automatic execution, and not on another', async () => {
    const before = (await history()).total as number;
    expect((await runMinute(rig.rt.ctx, 16 * 60_000)).parts).toEqual({});
    expect((await history()).total).toBe(before);
    const report = await runMinute(rig.rt.ctx, 15 * 60_000);
    expect(report.parts).toMatchObject({ 'novita-spot-migration': 'done' });
    const e = await eventually(async () => {
      const latest = (await history()).executions[0];
      expect(latest).toMatchObject({ triggeredBy: 'schedule', status: 'completed' });
      return latest;
    }, 15_000);
    expect(e.dryRun).toBe(false);
  });

  it('pages and filters the history', async () => {
    const all = await history('?limit=100');
    expect(all).toMatchObject({ total: 6, limit: 100, offset: 0 });
    expect(all.executions).toHaveLength(6);
    const defaults = await history();
    expect(defaults).toMatchObject({ limit: 20, offset: 0, total: 6 });
    const page = await history('?limit=2&offset=1');
    expect(page.executions.map((e: { jobId: string }) => e.jobId)).toEqual(all.executions.slice(1, 3).map((e: { jobId: string }) => e.jobId));
    const failed = await history('?status=failed');
    expect(failed.total).toBe(1);
    expect(failed.executions[0].status).toBe('failed');
    expect((await history('?status=completed')).total).toBe(5);
    for (const bad of ['limit=101', 'limit=0', 'offset=-2', 'status=done']) {
      const res = await rig.api('GET', `/api/migration/history?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    }
  });

  it('sums the executions in status, metrics and /health', async () => {
    const status = (await rig.api('GET', '/api/migration/status')).body;
    expect(status.statistics).toMatchObject({ totalExecutions: 6, successfulExecutions: 5, failedExecutions: 1, totalMigrations: 2 });
    expect(status.statistics.totalInstancesProcessed).toBeGreaterThanOrEqual(18);
    expect(status.lastExecution).toMatchObject({ status: 'completed', startedAt: expect.stringMatching(ISO) });
    const metrics = (await rig.api('GET', '/api/metrics')).body;
    expect(metrics.jobs).toMatchObject({ pending: 0, failed: 1 });
    expect(metrics.instances.exited).toBe(3);
    const health = (await rig.api('GET', '/health')).body;
    expect(health.migrationService).toMatchObject({ enabled: true, lastExecution: expect.stringMatching(ISO), status: 'healthy', recentErrors: 1 });
  });
});

describe('Novita spot migration with nothing rented', () => {
  let rig: NovitaRig;
  beforeAll(async () => {
    rig = await startNovitaRig({ NOVITA_BILLING_MODE: 'spot' });
  });
  afterAll(async () => rig?.stop());

  it('records no execution from the minute schedule', async () => {
    // An instance on Novita not created through this service: nothing a migration may touch.
    rig.fake.seed({ id: 'outsider', status: 'exited', spotStatus: 'reclaimed', spotReclaimTime: '1704067200' });
    const report = await runMinute(rig.rt.ctx, 30 * 60_000);
    expect(report.parts).toEqual({ 'training-repair': 'done', 'novita-spot-migration': 'done' });
    const res = await rig.api('GET', '/api/migration/history');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 0, executions: [] });
    expect(rig.fake.instances.get('outsider')).toMatchObject({ status: 'exited' });
  });
});
