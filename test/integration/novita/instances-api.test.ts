import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBody, eventually, startNovitaRig, webhookReceiver, type NovitaRig } from './harness.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('Novita instances API (embedded runtime, fake Novita on loopback)', () => {
  let rig: NovitaRig;
  const logs: string[] = [];
  const writes = { out: process.stdout.write, err: process.stderr.write };
  beforeAll(async () => {
    // Capture every log line (DEBUG) to check the key never reaches them.
    const capture = (chunk: unknown) => (logs.push(String(chunk)), true);
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    rig = await startNovitaRig({ LOG_LEVEL: 'DEBUG', NOVITA_BILLING_MODE: 'spot' });
  });
  afterAll(async () => {
    await rig?.stop();
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
  });

  const instance = async (id: string) => (await rig.api('GET', `/api/instances/${id}`)).body;

  it('creates an instance on the cheapest deployable product and watches it until running', async () => {
    const hook = await webhookReceiver({ failFirst: 1 });
    try {
      const res = await rig.api('POST', '/api/instances', createBody({ name: 'my-gpu-instance', webhookUrl: hook.url }));
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        instanceId: expect.stringMatching(/^inst-[0-9a-f]{12}$/),
        status: 'creating',
        message: 'Instance creation initiated',
        estimatedReadyTime: expect.stringMatching(ISO),
      });
      // Spot billing: prod-4090-hk-a (18000) beats -b (21000); -c is not deployable, -us is elsewhere.
      const sent = rig.fake.creates().at(-1)!;
      expect(sent.authorization).toBe(`Bearer ${rig.apiKey}`);
      expect(sent.body).toEqual({
        name: 'my-gpu-instance',
        productId: 'prod-4090-hk-a',
        gpuNum: 1,
        rootfsSize: 60,
        imageUrl: 'novitalabs/pytorch:2.4-cuda12.4-jupyter',
        ports: '8888/http, 22/tcp',
        envs: [{ key: 'JUPYTER_ENABLE', value: '1' }],
        clusterId: 'CN-HK-01',
        kind: 'gpu',
        billingMode: 'spot',
      });
      const id = res.body.instanceId as string;
      const ready = await eventually(async () => {
        const got = await instance(id);
        expect(got.status).toBe('running');
        return got;
      }, 15_000);
      const host = `${[...rig.fake.instances.values()].find((i) => i.name === 'my-gpu-instance')!.id}.novita.test`;
      expect(ready).toMatchObject({
        id,
        name: 'my-gpu-instance',
        status: 'running',
        gpuNum: 1,
        region: 'CN-HK-01',
        portMappings: [
          { port: 8888, endpoint: `https://${host}:8888`, type: 'http' },
          { port: 22, endpoint: `ssh://${host}:22`, type: 'tcp' },
        ],
        connectionDetails: {
          ssh: `ssh root@${host} -p 22`,
          jupyter: `https://${host}:8888`,
          webTerminal: `https://${host}:7681`,
        },
        createdAt: expect.stringMatching(ISO),
        readyAt: expect.stringMatching(ISO),
      });
      expect(JSON.stringify(ready)).not.toContain('not-for-clients');
      // The receiver refused the first delivery; the retry brings it.
      await eventually(async () => expect(hook.received).toHaveLength(1), 15_000);
      expect(JSON.parse(hook.received[0]!.body)).toEqual({
        event: 'instance.ready',
        instanceId: id,
        status: 'running',
        timestamp: ready.readyAt,
        instance: { id, name: 'my-gpu-instance', connectionDetails: ready.connectionDetails },
      });
    } finally {
      await hook.close();
    }
  });

  it.each([
    ['no productName', createBody({ productName: undefined }), 'productName', 'Product name is required'],
    ['no name', createBody({ name: undefined }), 'name', 'Instance name is required'],
    ['no templateId', createBody({ templateId: undefined }), 'templateId', 'Template ID is required'],
    ['gpuNum 0', createBody({ gpuNum: 0 }), 'gpuNum', 'gpuNum must be between 1 and 8'],
    ['gpuNum 9', createBody({ gpuNum: 9 }), 'gpuNum', 'gpuNum must be between 1 and 8'],
    ['gpuNum as text', createBody({ gpuNum: 'two' }), 'gpuNum', 'gpuNum must be a number'],
    ['an ftp webhook', createBody({ webhookUrl: 'ftp://example.com/hook' }), 'webhookUrl', 'webhookUrl must be an http(s) URL'],
    ['an unknown product', createBody({ productName: 'GTX 1080 8GB' }), 'productName', 'Unknown product "GTX 1080 8GB"'],
    ['an unknown template', createBody({ templateId: 'template-nope' }), 'templateId', 'Unknown template "template-nope"'],
    ['a region without the product', createBody({ region: 'EU-DE-01' }), 'region', 'not offered in EU-DE-01'],
    ['a root disk past the product limit', createBody({ rootfsSize: 900 }), 'rootfsSize', 'between 10 and 500'],
  ])('answers 400 VALIDATION_ERROR for %s and creates nothing', async (_case, body, field, reason) => {
    const before = (await rig.api('GET', '/api/instances')).body.total as number;
    const creates = rig.fake.creates().length;
    const res = await rig.api('POST', '/api/instances', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.any(String),
      details: { field, reason: expect.stringContaining(reason) },
      timestamp: expect.stringMatching(ISO),
      requestId: res.headers.get('x-request-id'),
    });
    expect(rig.fake.creates()).toHaveLength(creates);
    expect((await rig.api('GET', '/api/instances')).body.total).toBe(before);
  });

  it('answers malformed JSON with 400 in the Novita shape', async () => {
    const res = await rig.api('POST', '/api/instances', '{"name": ', { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
  });

  it.each([
    ['no capacity (400 INSUFFICIENT_RESOURCE)', () => undefined, { productName: 'H100 80GB' }, 503, { novitaStatus: 400, novitaCode: 'INSUFFICIENT_RESOURCE' }],
    ['Novita throttling (429)', (r: NovitaRig) => void (r.fake.throttleNext = 1), {}, 503, { novitaStatus: 429 }],
    ['Novita down (503)', (r: NovitaRig) => void (r.fake.unavailableNext = 1), {}, 503, { novitaStatus: 503 }],
  ])('answers NOVITA_API_ERROR for %s and keeps no record', async (_case, arrange, overrides, status, details) => {
    // Warm the product and template cache so the failure lands on create itself.
    await rig.api('POST', '/api/instances', createBody(overrides));
    const before = (await rig.api('GET', '/api/instances')).body.total as number;
    arrange(rig);
    const res = await rig.api('POST', '/api/instances', createBody(overrides));
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ code: 'NOVITA_API_ERROR', details, requestId: res.headers.get('x-request-id') });
    expect((await rig.api('GET', '/api/instances')).body.total).toBe(before);
  });

  it('answers 401 AUTHENTICATION_ERROR when Novita refuses the configured key, without the key', async () => {
    const good = rig.fake.apiKey;
    rig.fake.apiKey = 'rotated-elsewhere';
    try {
      const res = await rig.api('POST', '/api/instances', createBody());
      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'AUTHENTICATION_ERROR', details: { novitaStatus: 401 } });
      const health = await rig.api('GET', '/health');
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ status: 'unhealthy', dependencies: { novitaApi: 'unhealthy', database: 'healthy' } });
      expect(health.body.errors.novitaApi).toContain('invalid api key');
    } finally {
      rig.fake.apiKey = good;
    }
  });

  it('fails an instance that is not running within the startup limit, with instance.failed', async () => {
    // The lowered limit applies to every watch: let the earlier instances finish first.
    await eventually(async () => {
      for (const s of ['creating', 'starting']) expect((await rig.api('GET', `/api/instances?status=${s}`)).body.total).toBe(0);
    }, 15_000);
    const hook = await webhookReceiver();
    const config = rig.rt.ctx.config;
    const limit = config.NOVITA_STARTUP_TIMEOUT_SECONDS;
    config.NOVITA_STARTUP_TIMEOUT_SECONDS = 2;
    try {
      const res = await rig.api('POST', '/api/instances', createBody({ productName: 'L40S 48GB', webhookUrl: hook.url }));
      expect(res.status).toBe(201);
      const id = res.body.instanceId as string;
      const failed = await eventually(async () => {
        const got = await instance(id);
        expect(got.status).toBe('failed');
        return got;
      }, 15_000);
      expect(failed.error).toEqual({ code: 'STARTUP_TIMEOUT', message: 'Instance failed to start within 2 seconds' });
      await eventually(async () => expect(hook.received).toHaveLength(1), 10_000);
      expect(JSON.parse(hook.received[0]!.body)).toEqual({
        event: 'instance.failed',
        instanceId: id,
        status: 'failed',
        timestamp: failed.failedAt,
        error: { code: 'STARTUP_TIMEOUT', message: 'Instance failed to start within 2 seconds' },
      });
    } finally {
      config.NOVITA_STARTUP_TIMEOUT_SECONDS = limit;
      await hook.close();
    }
  });

  it('answers 404 INSTANCE_NOT_FOUND for an unknown id', async () => {
    const res = await rig.api('GET', '/api/instances/inst-000000000000');
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'INSTANCE_NOT_FOUND', message: expect.stringContaining('inst-000000000000') });
  });

  it('lists instances newest first with total, limit, offset and a status filter', async () => {
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await rig.api('POST', '/api/instances', createBody())).body.instanceId);
    const all = (await rig.api('GET', '/api/instances')).body;
    expect(all).toMatchObject({ limit: 50, offset: 0 });
    expect(all.instances).toHaveLength(all.total);
    expect(all.instances.slice(0, 3).map((i: { id: string }) => i.id)).toEqual([...made].reverse());
    const page = (await rig.api('GET', '/api/instances?limit=2&offset=1')).body;
    expect(page).toMatchObject({ total: all.total, limit: 2, offset: 1 });
    expect(page.instances).toEqual(all.instances.slice(1, 3));
    await eventually(async () => {
      const running = (await rig.api('GET', '/api/instances?status=running')).body;
      expect(running.instances.map((i: { id: string }) => i.id)).toEqual(expect.arrayContaining(made));
      expect(running.instances.every((i: { status: string }) => i.status === 'running')).toBe(true);
    }, 15_000);
    const failed = (await rig.api('GET', '/api/instances?status=failed')).body;
    expect(failed.total).toBe(1);
    for (const bad of ['limit=0', 'offset=-1', 'status=sleeping', 'limit=ten']) {
      const res = await rig.api('GET', `/api/instances?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    }
  });

  it('serves metrics computed from the counters and the records', async () => {
    const listed = (await rig.api('GET', '/api/instances')).body;
    const res = await rig.api('GET', '/api/metrics');
    expect(res.status).toBe(200);
    const m = res.body;
    expect(m.requests.total).toBe(m.requests.successful + m.requests.failed);
    expect(m.requests.failed).toBeGreaterThanOrEqual(12);
    expect(m.instances.total).toBe(listed.total);
    expect(m.instances.failed).toBe(1);
    expect(m.instances.running + m.instances.creating + m.instances.starting + m.instances.failed).toBe(listed.total);
    expect(m.jobs.failed).toBe(1);
    expect(m.jobs.completed).toBe(m.instances.running);
    // The product list and template were reused across creates.
    expect(m.cache.hits).toBeGreaterThan(0);
    expect(m.cache.hitRate).toBeCloseTo(m.cache.hits / (m.cache.hits + m.cache.misses), 2);
    expect(m.system.memoryUsage.used).toBeGreaterThan(0);
    expect(typeof m.system.uptime).toBe('number');
  });

  it('reports the Novita API and the migration service in /health', async () => {
    const res = await rig.api('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'healthy',
      dependencies: { database: 'healthy', novitaApi: 'healthy' },
      migrationService: { enabled: true, lastExecution: null, nextExecution: expect.stringMatching(ISO), status: 'healthy', recentErrors: 0 },
    });
  });

  it('never puts the API key in a response or a log line, though every Novita call carried it', () => {
    expect(rig.fake.seen.length).toBeGreaterThan(10);
    expect(rig.fake.seen.filter((r) => r.authorization === `Bearer ${rig.apiKey}`).length).toBeGreaterThan(10);
    const logText = logs.join('');
    expect(logText).toContain('novita instance created');
    expect(logText).not.toContain(rig.apiKey);
    expect(rig.answers.join('\n')).not.toContain(rig.apiKey);
  });
});
