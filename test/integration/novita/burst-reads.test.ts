/**
 * Issue 16: what a placement run with a cloud model and the burst caps read does not grow with
 * the instances bursts rented and gave back before (each record stays, for GET /api/instances).
 * Given back through terminateInstance on earlier days; metered through the store, counts only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { declareModel, modelSpec } from '../../../functions/cluster/catalogue.js';
import { runPlacement } from '../../../functions/cluster/placement.js';
import { submitTask } from '../../../functions/cluster/tasks.js';
import type { AppContext } from '../../../functions/core/context.js';
import type { EventHandler } from '../../../functions/core/events.js';
import { novitaKeys } from '../../../functions/core/keys.js';
import { Meter } from '../../../functions/metering/meter.js';
import { meterContext } from '../../../functions/metering/metered-ports.js';
import { spendToday } from '../../../functions/novita/burst.js';
import { liveBurstInstances, markLiveBurst } from '../../../functions/novita/burst-index.js';
import { listInstances } from '../../../functions/novita/instances.js';
import { terminateInstance } from '../../../functions/novita/join.js';
import { getInstanceItem, type NovitaInstanceItem } from '../../../functions/novita/model.js';
import { modelBurstState } from '../../../functions/novita/model-burst.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { GPU_WORKER, ScriptedAgent } from '../../harness/scripted-agent.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const served = {
  kind: 'image',
  image: 'server:1',
  port: 8080,
  protocol: 'vision-generate',
  gpuMemoryMb: 0,
  command: ['serve'],
};
/** Served by its rented node only; the instance is live. */
const Z = 'rented-only-model';
/** Tasks queued, no node: the run asks the caps, which refuse on today's spend. */
const W = 'burst-on-demand-model';

describe('burst reads with many instances given back before', () => {
  let rt: Runtime | undefined;
  let rented: ScriptedAgent | undefined;
  afterEach(async () => {
    await rented?.stop();
    rented = undefined;
    await rt?.stop();
    rt = undefined;
  });

  /** A burst instance as createInstance leaves it (marker, then record), running since `createdAt`. */
  async function rent(
    ctx: AppContext,
    id: string,
    createdAtMs: number,
    extra: Partial<NovitaInstanceItem> = {},
  ) {
    await markLiveBurst(ctx, id, new Date(createdAtMs).toISOString());
    return record(ctx, id, createdAtMs, extra);
  }

  /** The instance record alone (as one rented before the markers existed leaves it). */
  async function record(
    ctx: AppContext,
    id: string,
    createdAtMs: number,
    extra: Partial<NovitaInstanceItem> = {},
  ) {
    const createdAt = new Date(createdAtMs).toISOString();
    const item: NovitaInstanceItem = {
      ...novitaKeys.instance(id),
      ...novitaKeys.instanceIndexes(createdAt, id, 'running'),
      version: 1,
      instanceId: id,
      name: `burst-model-${W}`,
      status: 'running',
      productId: 'p',
      productName: 'RTX 4090 24GB',
      templateId: 't',
      gpuNum: 1,
      rootfsSize: 60,
      region: 'CN-HK-01',
      billingMode: 'spot',
      price: 0.5,
      joinFleet: true,
      nodeName: id,
      burstModel: W,
      createdAt,
      ...extra,
    };
    await ctx.store.put(item);
    return item;
  }

  async function measure(givenBack: number) {
    const meter = new Meter();
    const hold = (handlers: Record<string, EventHandler>) => ({
      ...handlers,
      'placement.run': async () => undefined,
    });
    rt = await startRuntime({
      port: 0,
      env: {
        LOG_LEVEL: 'SILENT',
        AWS_ENDPOINT_URL: undefined,
        CLOUD_BURST_TEMPLATE_ID: 't',
        CLOUD_BURST_MAX_INSTANCES: '10',
        CLOUD_BURST_MAX_SPEND_PER_DAY: '3.5',
      },
      instrument: { context: (ctx) => void meterContext(ctx, meter), events: hold },
    });
    const ctx = rt.ctx;
    // Noon UTC, so today's hours never cross midnight.
    const now = Math.floor(Date.now() / DAY) * DAY + 12 * HOUR;
    ctx.now = () => now;
    await declareModel(
      ctx,
      modelSpec.parse({
        ...served,
        id: Z,
        cloud: { product: 'RTX 4090 24GB', max_price_per_hour: 1, always: true },
      }),
    );
    await declareModel(
      ctx,
      modelSpec.parse({ ...served, id: W, cloud: { product: 'RTX 4090 24GB', max_price_per_hour: 1 } }),
    );
    for (let i = 0; i < 2; i++)
      await submitTask(ctx, {
        source: 'cluster',
        taskType: 'image_generation',
        model: W,
        parameters: { prompt: `w ${i}` },
        priority: 0,
        priorityInput: 0,
      });

    rented = new ScriptedAgent(rt.url, 'rented-z', { ...GPU_WORKER, driver: 'process', models: [Z] });
    await rented.register();
    await rented.heartbeat();
    const at = new Date(now).toISOString();
    await rent(ctx, 'inst-live', now - 2 * HOUR, {
      burstModel: Z,
      nodeId: rented.nodeId!,
      joinedAt: at,
      lastActiveAt: at,
    });
    // Given back today (counted in today's spend), the same in both runs.
    for (const id of ['inst-today-1', 'inst-today-2']) {
      const item = await rent(ctx, id, now - 3 * HOUR);
      await terminateInstance({ ...ctx, now: () => now - HOUR }, item, 'test');
    }
    // Given back on the 30 days before.
    for (let i = 0; i < givenBack; i++) {
      const end = now - (1 + (i % 30)) * DAY;
      const item = await rent(ctx, `inst-old-${i}`, end - 5 * HOUR);
      await terminateInstance({ ...ctx, now: () => end }, item, 'test');
    }

    // The first run after start-up writes the refusal; the measured one is the steady state.
    await runPlacement(ctx);
    meter.reset();
    const run = await meter.within('run', () => runPlacement(ctx));
    const spent = await meter.within('spend', () => spendToday(ctx));
    const listed = await listInstances(ctx, { limit: 50, offset: 0 });
    return {
      run,
      spent,
      refusal: (await modelBurstState(ctx, W))?.reason,
      listedTotal: listed.total,
      live: (await getInstanceItem(ctx, 'inst-live'))?.terminatedAt,
      runUnits: meter.total((e) => e.label === 'run'),
      spendUnits: meter.total((e) => e.label === 'spend'),
    };
  }

  it('a placement run with a cloud model and spendToday read the same with 5 and 200 given back', async () => {
    const few = await measure(5);
    await rented?.stop();
    rented = undefined;
    await rt?.stop();
    rt = undefined;
    const many = await measure(200);

    // Every instance is still listed: the records stay, only the burst reads skip them.
    expect(few.listedTotal).toBe(1 + 2 + 5);
    // The rented node is online and its model idle for less than the setting: its instance stays.
    expect(few.live).toBeUndefined();
    expect(many.live).toBeUndefined();
    expect(many.listedTotal).toBe(1 + 2 + 200);
    // 2 h of the live one and 2 h of each given back today, at 0.5 a GPU hour.
    expect(few.spent).toBe(3);
    expect(many.spent).toBe(3);
    expect(many.refusal).toBe(
      "2 tasks of model burst-on-demand-model queued and no fleet node takes them; burst refused: today's burst spend 3 plus up to 1 for an hour would pass CLOUD_BURST_MAX_SPEND_PER_DAY (3.5)",
    );
    expect(few.refusal).toBe(many.refusal);

    expect(many.runUnits.readUnits).toBe(few.runUnits.readUnits);
    expect(many.runUnits.dynamoCalls).toBe(few.runUnits.dynamoCalls);
    expect(many.spendUnits.readUnits).toBe(few.spendUnits.readUnits);
    expect(many.spendUnits.dynamoCalls).toBe(few.spendUnits.dynamoCalls);
    // The live markers, the live record, today's ended markers: a few units, however many went before.
    expect(many.spendUnits.readUnits).toBeLessThanOrEqual(3);
    expect(many.runUnits.writeUnits).toBe(few.runUnits.writeUnits);
  }, 180_000);

  it('finishes or drops what a crash left half-way, and indexes instances rented before the markers once', async () => {
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, CLOUD_BURST_TEMPLATE_ID: 't' },
    });
    const ctx = rt.ctx;
    const now = Math.floor(Date.now() / DAY) * DAY + 12 * HOUR;
    ctx.now = () => now;
    // Rented before the markers: live, given back today, given back yesterday.
    await record(ctx, 'inst-old-live', now - 2 * HOUR);
    await record(ctx, 'inst-old-today', now - 3 * HOUR, { terminatedAt: new Date(now - HOUR).toISOString() });
    await record(ctx, 'inst-old-yesterday', now - 30 * HOUR, {
      terminatedAt: new Date(now - 20 * HOUR).toISOString(),
    });
    expect((await liveBurstInstances(ctx)).map((i) => i.instanceId)).toEqual(['inst-old-live']);
    expect(await spendToday(ctx)).toBe(1 + 1);

    // A give-back that stopped after marking its record; a create that died before its record,
    // 11 minutes ago; one whose record is being written now.
    const halfway = await rent(ctx, 'inst-halfway', now - 2 * HOUR);
    await ctx.store.update(halfway.pk, halfway.sk, { set: { terminatedAt: new Date(now).toISOString() } });
    await markLiveBurst(ctx, 'inst-died', new Date(now - 11 * 60_000).toISOString());
    await markLiveBurst(ctx, 'inst-creating', new Date(now - 60_000).toISOString());

    const markers = async (pk: string) =>
      (await ctx.store.query<{ pk: string; sk: string }>(pk)).items.map((m) => m.sk).sort();
    expect((await liveBurstInstances(ctx)).map((i) => i.instanceId)).toEqual(['inst-old-live']);
    expect(await markers(novitaKeys.liveBurstsPk)).toEqual(['#INDEXED', 'inst-creating', 'inst-old-live']);
    expect(await markers(novitaKeys.endedBurstsPk(new Date(now).toISOString().slice(0, 10)))).toEqual([
      'inst-halfway',
      'inst-old-today',
    ]);
    // The half-way give-back counts its 2 hours, once; retried, the give-back changes nothing.
    expect(await spendToday(ctx)).toBe(1 + 1 + 1);
    await terminateInstance(ctx, halfway, 'retried');
    expect(await spendToday(ctx)).toBe(1 + 1 + 1);
    expect((await listInstances(ctx, { limit: 50, offset: 0 })).total).toBe(4);
  }, 60_000);
});
