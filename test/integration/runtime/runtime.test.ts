import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventHandlers } from '../../../functions/event-handlers.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { APP_SCHEDULES } from '../../../functions/schedules.js';

const moto = process.env.AWS_ENDPOINT_URL;
if (!moto && process.env.CI === 'true') throw new Error('CI=true but AWS_ENDPOINT_URL is not set: the emulator suite cannot be skipped');

const quiet = { LOG_LEVEL: 'SILENT' };

function atExpression(date: Date): string {
  return `at(${date.toISOString().slice(0, 19)})`;
}

const modes = [
  { name: 'embedded', env: { ...quiet, AWS_ENDPOINT_URL: undefined } },
  {
    name: 'emulator (moto)',
    env: {
      ...quiet,
      AWS_ENDPOINT_URL: moto,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    },
  },
];

describe.each(modes)('local runtime, $name', (mode) => {
  const skip = mode.name.startsWith('emulator') && !moto;
  let runtime: Runtime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  const start = (extra: Record<string, string | undefined> = {}, dataDir?: string) =>
    startRuntime({
      port: 0,
      dataDir,
      scheduleRefreshMs: 200,
      env: { ...mode.env, TABLE_NAME: `rt-${Date.now()}`, QUEUE_PREFIX: `rt${Date.now()}-`, SCHEDULE_GROUP: `rt${Date.now()}`, ARTIFACTS_BUCKET: `rt-${Date.now()}`, ...extra },
    });

  it.skipIf(skip)('serves /health with every dependency probed, and the API reference', async () => {
    runtime = await start();
    const res = await fetch(`${runtime.url}/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'healthy',
      version: '1.0.0',
      database_connected: true,
      dependencies: { database: 'healthy', queue: 'healthy', scheduler: 'healthy', artifacts: 'healthy', cache: 'healthy' },
    });
    expect(typeof body.uptime).toBe('number');
    const spec = (await (await fetch(`${runtime.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    expect(spec.paths['/health']).toBeDefined();
    const docs = await fetch(`${runtime.url}/docs`);
    expect(await docs.text()).toContain('/docs/assets/swagger-ui-bundle.js');
    const redoc = await fetch(`${runtime.url}/redoc`);
    expect(await redoc.text()).toContain('/docs/assets/redoc.standalone.js');
    const bundle = await fetch(`${runtime.url}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  it.skipIf(skip)('fires a stored schedule on time through the events queue', async () => {
    const received: unknown[] = [];
    eventHandlers['test.fired'] = async (event) => void received.push(event);
    try {
      runtime = await start();
      const fireAt = new Date(Date.now() + 2500);
      await runtime.ctx.scheduler.upsert({
        name: 'one-shot',
        expression: atExpression(fireAt),
        timezone: 'UTC',
        payload: JSON.stringify({ type: 'test.fired', marker: 42 }),
      });
      const stored = await runtime.ctx.scheduler.get('one-shot');
      expect(stored).toMatchObject({ expression: atExpression(fireAt), timezone: 'UTC' });
      const deadline = Date.now() + 15_000;
      while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(received).toEqual([{ type: 'test.fired', marker: 42 }]);
      // The at() second was truncated, so it fired no earlier than that second.
      expect(Date.now()).toBeGreaterThanOrEqual(Math.floor(fireAt.getTime() / 1000) * 1000);
    } finally {
      delete eventHandlers['test.fired'];
    }
  }, 30_000);
});

describe('local runtime state', () => {
  it('keeps embedded state across a restart with a data folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleet-data-'));
    try {
      const env = { ...quiet, AWS_ENDPOINT_URL: undefined };
      let rt = await startRuntime({ port: 0, dataDir: dir, env });
      await rt.ctx.store.put({ pk: 'KEEP', sk: 'META', value: 'still here' });
      await rt.ctx.secrets.put('api-key', 'k');
      await rt.stop();
      rt = await startRuntime({ port: 0, dataDir: dir, env });
      expect(await rt.ctx.store.get('KEEP', 'META')).toMatchObject({ value: 'still here' });
      expect(await rt.ctx.secrets.get('api-key')).toBe('k');
      await rt.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('holds every app schedule after start: the minute tick (sweeps, placement, training repair, spot migration), maintenance', async () => {
    const rt = await startRuntime({ port: 0, env: { ...quiet, AWS_ENDPOINT_URL: undefined } });
    try {
      for (const spec of APP_SCHEDULES) {
        const stored = await rt.ctx.scheduler.get(spec.name);
        expect(stored, spec.name).toMatchObject({ expression: spec.expression, payload: spec.payload });
      }
      const types = APP_SCHEDULES.map((s) => (JSON.parse(s.payload) as { type: string }).type);
      expect(types).toEqual(expect.arrayContaining(['minute.tick', 'maintenance.run']));
      for (const retired of ['training-repair', 'novita-spot-migration']) expect(await rt.ctx.scheduler.get(retired)).toBeUndefined();
    } finally {
      await rt.stop();
    }
  });

  it('keeps nothing with no data folder', async () => {
    const env = { ...quiet, AWS_ENDPOINT_URL: undefined };
    let rt = await startRuntime({ port: 0, env });
    await rt.ctx.store.put({ pk: 'GONE', sk: 'META' });
    await rt.stop();
    rt = await startRuntime({ port: 0, env });
    expect(await rt.ctx.store.get('GONE', 'META')).toBeUndefined();
    await rt.stop();
  });

  it('reports 503 unhealthy when a dependency fails', async () => {
    const rt = await startRuntime({ port: 0, env: { ...quiet, AWS_ENDPOINT_URL: undefined } });
    try {
      rt.ctx.probes = { engine: async () => Promise.reject(new Error('socket closed')) };
      const res = await fetch(`${rt.url}/health`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unhealthy', dependencies: { engine: 'unhealthy', database: 'healthy' }, errors: { engine: 'socket closed' } });
    } finally {
      await rt.stop();
    }
  });
});
