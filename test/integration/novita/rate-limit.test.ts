import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBody, startNovitaRig, type NovitaRig } from './harness.js';

describe('Novita rate limits (documented defaults, embedded runtime)', () => {
  let rig: NovitaRig;
  // A clock at real pace that starts 1 s into a minute, so the 11 calls share one window.
  const realStart = Date.now();
  const base = Math.floor(realStart / 60_000) * 60_000 + 1000;
  const now = () => base + (Date.now() - realStart);
  const windowEnd = String(Math.floor(base / 60_000) * 60 + 60);

  beforeAll(async () => {
    rig = await startNovitaRig(
      {
        NOVITA_RATE_LIMIT_CREATE_PER_MINUTE: undefined,
        NOVITA_RATE_LIMIT_STATUS_PER_MINUTE: undefined,
        NOVITA_RATE_LIMIT_GENERAL_PER_HOUR: undefined,
      },
      { now },
    );
  });
  afterAll(async () => {
    await rig?.stop();
  });

  it('admits 10 creations a minute per IP, then answers 429 RATE_LIMIT_EXCEEDED with the headers', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await rig.api('POST', '/api/instances', createBody());
      expect(res.status).toBe(201);
      expect(res.headers.get('x-ratelimit-limit')).toBe('10');
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(9 - i));
      expect(res.headers.get('x-ratelimit-reset')).toBe(windowEnd);
    }
    const refused = await rig.api('POST', '/api/instances', createBody());
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({
      code: 'RATE_LIMIT_EXCEEDED',
      message: 'Rate limit exceeded: 10 requests per minute',
      details: { limit: 10, retryAfter: expect.any(Number) },
      requestId: refused.headers.get('x-request-id'),
    });
    expect(refused.headers.get('x-ratelimit-limit')).toBe('10');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset')).toBe(windowEnd);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // The refused call never reached Novita, and a bad body is refused before validation too.
    expect(rig.fake.creates()).toHaveLength(10);
    expect((await rig.api('POST', '/api/instances', { gpuNum: 99 })).status).toBe(429);
    expect((await rig.api('GET', '/api/instances')).body.total).toBe(10);
  });

  it('counts status queries and the rest in their own buckets, on errors too', async () => {
    const list = await rig.api('GET', '/api/instances');
    expect(list.status).toBe(200);
    expect(list.headers.get('x-ratelimit-limit')).toBe('100');
    const missing = await rig.api('GET', '/api/instances/inst-unknown');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-ratelimit-limit')).toBe('100');
    expect(Number(missing.headers.get('x-ratelimit-remaining'))).toBeLessThan(Number(list.headers.get('x-ratelimit-remaining')));
    const metrics = await rig.api('GET', '/api/metrics');
    expect(metrics.headers.get('x-ratelimit-limit')).toBe('1000');
    expect(metrics.headers.get('x-ratelimit-reset')).toBe(String(Math.floor(base / 3_600_000) * 3600 + 3600));
    // The refusals are counted as failed requests.
    expect(metrics.body.requests.failed).toBeGreaterThanOrEqual(3);
  });
});
