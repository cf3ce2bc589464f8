/**
 * The burst spend cap counts each rented instance at its price per GPU hour times its GPUs (Novita
 * bills each card), over the embedded store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { novitaKeys } from '../../../functions/core/keys.js';
import { burstRefusal, spendToday } from '../../../functions/novita/burst.js';
import type { NovitaInstanceItem } from '../../../functions/novita/model.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';

const HOUR = 3_600_000;

describe('burst spend', () => {
  let rt: Runtime;
  let now = Date.parse('2026-03-02T12:00:00Z');

  const rented = (id: string, gpuNum: number, price: number, hoursAgo: number, extra = {}) => {
    const createdAt = new Date(now - hoursAgo * HOUR).toISOString();
    const item: NovitaInstanceItem = {
      ...novitaKeys.instance(id),
      ...novitaKeys.instanceIndexes(createdAt, id, 'running'),
      version: 1,
      instanceId: id,
      name: id,
      status: 'running',
      productId: 'p',
      productName: 'RTX 4090 24GB',
      templateId: 't',
      gpuNum,
      rootfsSize: 60,
      region: 'CN-HK-01',
      billingMode: 'onDemand',
      price,
      burstFor: 'job-1',
      createdAt,
      ...extra,
    };
    return rt.ctx.store.put(item);
  };

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: 'SILENT',
        AWS_ENDPOINT_URL: undefined,
        CLOUD_BURST_TEMPLATE_ID: 't',
        CLOUD_BURST_MAX_SPEND_PER_DAY: '100',
        CLOUD_BURST_MAX_INSTANCES: '5',
      },
    });
    rt.ctx.now = () => now;
  }, 60_000);

  afterAll(async () => {
    await rt?.stop();
  });

  it('sums price × GPUs × hours today (at least an hour each), and the next hour of the asked GPUs', async () => {
    await rented('four-cards', 4, 2, 3); // 2 × 4 × 3 = 24
    await rented('one-card', 1, 5, 0.25); // at least one hour: 5
    await rented('yesterday', 8, 9, 30, { terminatedAt: new Date(now - 20 * HOUR).toISOString() });
    expect(await spendToday(rt.ctx)).toBe(29);
    const cloud = { product: 'RTX 4090 24GB', region: 'CN-HK-01', max_price_per_hour: 10, spot: false };
    expect(await burstRefusal(rt.ctx, cloud, 'full', 7)).toBeNull(); // 29 + 70 = 99
    expect(await burstRefusal(rt.ctx, cloud, 'full', 8)).toBe(
      "full; burst refused: today's burst spend 29 plus up to 80 for an hour would pass CLOUD_BURST_MAX_SPEND_PER_DAY (100)",
    );
    now += HOUR; // an hour later: four cards at 2 for one more hour, one card at 5 for 1.25 h instead of 1
    expect(await spendToday(rt.ctx)).toBe(29 + 8 + 1.25);
  });
});
