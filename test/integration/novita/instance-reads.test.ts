/**
 * Issue 16: GET /api/instances' first page, /api/metrics, the Novita schedule and the spot
 * migration read the same with 5 and 200 instances terminated before (their records stay: the
 * listing lists them all). Metered through the store, counts only.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppContext } from '../../../functions/core/context.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { novitaKeys } from '../../../functions/core/keys.js';
import { Meter } from '../../../functions/metering/meter.js';
import { meterContext } from '../../../functions/metering/metered-ports.js';
import { runNovitaSchedule } from '../../../functions/novita/events.js';
import { listInstances } from '../../../functions/novita/instances.js';
import { terminateInstance } from '../../../functions/novita/join.js';
import { instanceCounts, liveInstances, markLive } from '../../../functions/novita/live-index.js';
import { computeMetrics } from '../../../functions/novita/metrics.js';
import { runMigration } from '../../../functions/novita/migration.js';
import type { NovitaInstanceItem } from '../../../functions/novita/model.js';
import { NOVITA_KEY_SECRET } from '../../../functions/ports/novita-cloud.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { FakeNovita } from './fake-novita.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('Novita reads with many instances terminated before', () => {
  let rt: Runtime | undefined;
  let fake: FakeNovita | undefined;
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
    await fake?.stop();
    fake = undefined;
  });

  async function start(meter?: Meter) {
    const apiKey = `nv-test-${randomBytes(8).toString('hex')}`;
    fake = await new FakeNovita(apiKey).start();
    const jobs: string[] = [];
    // Migration runs are run by hand (measured); polls are not needed.
    const hold = (handlers: Record<string, EventHandler>) => ({
      ...handlers,
      'novita.migration.run': async (e: { jobId?: unknown }) => void jobs.push(String(e.jobId)),
      'novita.instance.poll': async () => undefined,
    });
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, NOVITA_BASE_URL: fake.url },
      instrument: {
        ...(meter ? { context: (ctx: AppContext) => void meterContext(ctx, meter) } : {}),
        events: hold as never,
      },
    });
    await rt.ctx.secrets.put(NOVITA_KEY_SECRET, apiKey);
    const now = Math.floor(Date.now() / DAY) * DAY + 12 * HOUR;
    rt.ctx.now = () => now;
    return { ctx: rt.ctx, now, jobs, fake };
  }

  /** An instance as createInstance leaves it (marker, then record), running; ids of one length. */
  async function instance(ctx: AppContext, id: string, createdAtMs: number, novitaId?: string) {
    const createdAt = new Date(createdAtMs).toISOString();
    const item: NovitaInstanceItem = {
      ...novitaKeys.instance(id),
      ...novitaKeys.instanceIndexes(createdAt, id, 'running'),
      version: 1,
      instanceId: id,
      name: 'an-instance',
      status: 'running',
      ...(novitaId ? { novitaInstanceId: novitaId } : {}),
      productId: 'prod-4090-hk-a',
      productName: 'RTX 4090 24GB',
      templateId: 't',
      gpuNum: 1,
      rootfsSize: 60,
      region: 'CN-HK-01',
      billingMode: 'spot',
      price: 0.5,
      createdAt,
      readyAt: createdAt,
    };
    await markLive(ctx, item);
    await ctx.store.put(item);
    return item;
  }

  async function measure(terminated: number) {
    const meter = new Meter();
    const { ctx, now, jobs, fake } = await start(meter);
    // A fresh deployment: the markers are indexed (none yet) before any instance.
    await instanceCounts(ctx);
    for (let i = 0; i < terminated; i++) {
      const created = now - 10 * DAY + i * 60_000;
      const item = await instance(ctx, `inst-old-${String(i).padStart(4, '0')}`, created);
      await terminateInstance({ ...ctx, now: () => created + HOUR }, item, 'test');
    }
    // Live, newest, at Novita.
    for (let i = 0; i < 3; i++) {
      fake.seed({ id: `nv-live-${i}` });
      await instance(ctx, `inst-new-${String(i).padStart(4, '0')}`, now - HOUR + i * 60_000, `nv-live-${i}`);
    }
    // Warm-up: folds the retired instances, runs one migration.
    await runNovitaSchedule(ctx);
    await runMigration(ctx, jobs.at(-1)!);

    meter.reset();
    await meter.within('schedule', () => runNovitaSchedule(ctx));
    const jobId = jobs.at(-1)!;
    await meter.within('migration', () => runMigration(ctx, jobId));
    const page = await meter.within('list', () => listInstances(ctx, { limit: 5, offset: 0 }));
    const metrics = await meter.within('metrics', () => computeMetrics(ctx));
    const exec = await ctx.store.get<{ pk: string; sk: string; summary: { totalInstances: number } }>(
      novitaKeys.migration(jobId).pk,
      novitaKeys.migration(jobId).sk,
    );
    const units = (label: string) => meter.total((e) => e.label === label);
    return {
      ids: page.items.map((i) => i.instanceId),
      total: page.total,
      cursor: page.cursor,
      instances: metrics.instances,
      completed: metrics.jobs.completed,
      processed: exec?.summary.totalInstances,
      live: (await liveInstances(ctx)).length,
      units: Object.fromEntries(['schedule', 'migration', 'list', 'metrics'].map((l) => [l, units(l)])),
    };
  }

  it('the first page, /api/metrics, the schedule and the migration read the same with 5 and 200 terminated', async () => {
    const few = await measure(5);
    await rt?.stop();
    rt = undefined;
    await fake?.stop();
    fake = undefined;
    const many = await measure(200);

    // Every instance is counted and listed: newest first, the live ones, then the last terminated.
    const first = ['inst-new-0002', 'inst-new-0001', 'inst-new-0000'];
    expect(few.ids).toEqual([...first, 'inst-old-0004', 'inst-old-0003']);
    expect(many.ids).toEqual([...first, 'inst-old-0199', 'inst-old-0198']);
    expect(few.total).toBe(3 + 5);
    expect(many.total).toBe(3 + 200);
    expect(few.cursor).toBeDefined();
    expect(many.instances).toMatchObject({ total: 203, running: 203, failed: 0 });
    expect(few.instances).toMatchObject({ total: 8, running: 8 });
    expect(many.completed).toBe(203 + 2);
    expect(many.processed).toBe(3);
    expect(few.live).toBe(3);
    expect(many.live).toBe(3);

    for (const label of ['schedule', 'migration', 'list', 'metrics']) {
      expect(many.units[label]!.readUnits, label).toBe(few.units[label]!.readUnits);
      expect(many.units[label]!.dynamoCalls, label).toBe(few.units[label]!.dynamoCalls);
      expect(many.units[label]!.writeUnits, label).toBe(few.units[label]!.writeUnits);
    }
    // A page of 5 and one more, plus the counts: a few units.
    expect(many.units['list']!.readUnits).toBeLessThanOrEqual(6);
  }, 240_000);

  it('pages on with the cursor, refuses a bad one with 400, and a crash half-way counts once', async () => {
    const { ctx, now } = await start();
    await instanceCounts(ctx);
    const items = [];
    for (let i = 0; i < 7; i++) items.push(await instance(ctx, `inst-${i}`, now - 2 * DAY + i * 60_000));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listInstances(ctx, { limit: 3, offset: 0, ...(cursor ? { cursor } : {}) });
      expect(page.total).toBe(7);
      expect(page.offset).toBe(seen.length);
      seen.push(...page.items.map((i) => i.instanceId));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(items.map((i) => i.instanceId).reverse());
    expect((await listInstances(ctx, { limit: 3, offset: 5 })).items.map((i) => i.instanceId)).toEqual([
      'inst-1',
      'inst-0',
    ]);

    const bad = await fetch(`${rt!.url}/api/instances?cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
    expect((await bad.json()) as unknown).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
    const first = await listInstances(ctx, { limit: 3, offset: 0 });
    const other = await fetch(`${rt!.url}/api/instances?status=failed&cursor=${first.cursor}`);
    expect(other.status).toBe(400);

    // Terminated, and the process died before the retirement: counted once, finished by the schedule.
    await ctx.store.update(items[0]!.pk, items[0]!.sk, {
      set: { terminatedAt: new Date(now).toISOString() },
    });
    // Retired, and it died before its marker went.
    await ctx.store.update(items[1]!.pk, items[1]!.sk, { set: { retiredAt: new Date(now).toISOString() } });
    expect((await instanceCounts(ctx)).total).toBe(7);
    await liveInstances(ctx);
    expect((await liveInstances(ctx)).map((i) => i.instanceId).sort()).toEqual([
      'inst-2',
      'inst-3',
      'inst-4',
      'inst-5',
      'inst-6',
    ]);
    expect((await instanceCounts(ctx)).total).toBe(7);
    // Folded an hour on, twice: the totals take them once.
    const later = { ...ctx, now: () => now + 2 * HOUR };
    await runNovitaSchedule(later);
    await runNovitaSchedule(later);
    expect(await instanceCounts(later)).toMatchObject({ total: 7, running: 7, ready: 7 });
    const retired = await ctx.store.query(novitaKeys.retiredInstancesPk);
    expect(retired.items).toHaveLength(2);
  }, 60_000);
});
