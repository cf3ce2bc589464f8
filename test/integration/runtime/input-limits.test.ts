import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';

/** Every input limit answers a clean 4xx in the route's error shape and changes nothing; never a 500. */
const KEY = 'k'.repeat(40);

describe('input limits (embedded runtime, API_AUTH=true)', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, API_AUTH: 'true' },
    });
    await rt.ctx.secrets.put('api-key', KEY);
    resetApiKeyCache();
  });
  afterAll(async () => {
    await rt?.stop();
    resetApiKeyCache();
  });

  const send = async (method: string, path: string, body?: string, auth = `Bearer ${KEY}`) => {
    const res = await fetch(rt.url + path, {
      method,
      headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body,
    });
    const text = await res.text();
    const json = res.headers.get('content-type')?.startsWith('application/json');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
    return { status: res.status, body: (json ? JSON.parse(text) : text) as any };
  };
  const register = (fields: string) =>
    send(
      'POST',
      '/agent/register',
      `{"nodeName":"lim-node","hostname":"h","arch":"arm64","os":"linux","cpuCount":4,"diskGb":10,${fields}}`,
    );
  const nodeCount = async () => ((await send('GET', '/api/nodes/')).body as unknown[]).length;

  it.each([
    ['above 2^53', '"memoryMb":18446744073709551616,"agentVersion":"1"', ['body', 'memoryMb']],
    ['beyond the double range', '"memoryMb":1e308,"agentVersion":"1"', ['body', 'memoryMb']],
    ['closer to 0 than DynamoDB stores', '"memoryMb":1e-200,"agentVersion":"1"', ['body', 'memoryMb']],
    [
      'nested in a list',
      '"memoryMb":1,"agentVersion":"1","gpus":[{"index":-9007199254740993}]',
      ['body', 'gpus', 0, 'index'],
    ],
  ])(
    'POST /agent/register with a number %s: 422 naming the field, nothing registered',
    async (_l, fields, loc) => {
      const before = await nodeCount();
      const res = await register(fields);
      expect(res.status).toBe(422);
      expect(res.body.detail).toEqual([
        { loc, msg: expect.stringMatching(/Number/), type: 'number_out_of_range' },
      ]);
      expect(await nodeCount()).toBe(before);
    },
  );

  it('a bearer token of the key’s length in non-ASCII characters is a 401, as any wrong key', async () => {
    // Header bytes arrive as Latin-1: 'é' is one character there and two bytes in UTF-8; raw UTF-8 of
    // '€' (3 bytes) is three characters. Either way the character count equals the key's.
    const rawUtf8 = Buffer.from('€'.repeat(KEY.length / 2), 'utf8')
      .toString('latin1')
      .slice(0, KEY.length);
    for (const token of ['é'.repeat(KEY.length), rawUtf8, 'k'.repeat(KEY.length - 1), 'x']) {
      expect(token.length === KEY.length || token.length < KEY.length).toBe(true);
      const res = await send('GET', '/api/vault/', undefined, `Bearer ${token}`);
      expect(res.status, token).toBe(401);
      expect(res.body).toEqual({ detail: 'Invalid or missing API key' });
    }
    expect((await send('GET', '/api/vault/')).status).toBe(200);
  });

  it('JSON nested 10,000 levels is a 422 (FastAPI shape) and a 400 (Novita shape)', async () => {
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const fastapi = await send('POST', '/agent/register', deep);
    expect(fastapi.status).toBe(422);
    expect(fastapi.body.detail[0]).toMatchObject({
      type: 'too_deep',
      msg: 'Nested deeper than 32 levels of objects and arrays',
    });
    const novita = await send('POST', '/api/instances', `{"name":"x","extra":${deep}}`);
    expect(novita.status).toBe(400);
    expect(novita.body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { reason: expect.stringMatching(/Nested deeper/) },
    });
  });

  it('a task whose free-form parameters nest 1,000 levels is refused before the store (the runtime stays up)', async () => {
    const res = await send(
      'POST',
      '/tasks',
      `{"task_type":"generate","model_name":"sdxl-turbo","parameters":{"a":${'['.repeat(1000)}${']'.repeat(1000)}}}`,
    );
    expect(res.status).toBe(400);
    expect(res.body.detail[0].type).toBe('too_deep');
    expect((await send('GET', '/health')).status).toBe(200);
  });

  it('a record over DynamoDB’s 400 KB is a 413 before the write: a large string, a large array', async () => {
    const before = ((await send('GET', '/tasks')).body as { tasks?: unknown[] }).tasks?.length;
    const bigString = await send(
      'POST',
      '/tasks',
      JSON.stringify({
        task_type: 'generate',
        model_name: 'sdxl-turbo',
        parameters: { prompt: 'x'.repeat(450_000) },
      }),
    );
    expect(bigString.status).toBe(413);
    expect(bigString.body.detail).toMatch(/would be \d+ KB; the store's limit is 400 KB/);
    const bigArray = await send(
      'POST',
      '/tasks',
      JSON.stringify({
        task_type: 'generate',
        model_name: 'sdxl-turbo',
        parameters: { seeds: Array(150_000).fill(7) },
      }),
    );
    expect(bigArray.status).toBe(413);
    expect(((await send('GET', '/tasks')).body as { tasks?: unknown[] }).tasks?.length).toBe(before);
  });

  it('a body over MAX_BODY_BYTES is a 413; a training job over 400 KB is a 413 in the training shape', async () => {
    const huge = await send(
      'POST',
      '/tasks',
      JSON.stringify({ task_type: 'x', model_name: 'y', parameters: { p: 'x'.repeat(1_100_000) } }),
    );
    expect(huge.status).toBe(413);
    const job = await send(
      'POST',
      '/jobs',
      JSON.stringify({
        name: 'big-job',
        image: 'trainer:1',
        command: Array(500).fill('y'.repeat(1000)),
        schedule: null,
        max_retries: 0,
      }),
    );
    expect(job.status).toBe(413);
    expect(job.body).toMatchObject({ error_type: 'PayloadTooLargeError' });
    // The name claimed before the refused write was given back.
    const small = await send(
      'POST',
      '/jobs',
      JSON.stringify({ name: 'big-job', image: 'trainer:1', command: ['y'], schedule: null, max_retries: 0 }),
    );
    expect(small.status).toBe(201);
  });

  it('ids longer than a DynamoDB key are a 404 or 422, not an engine error', async () => {
    const long = 'a'.repeat(3000);
    expect((await send('DELETE', `/api/vault/${long}`)).status).toBe(404);
    expect((await send('GET', `/tasks/${long}`)).status).toBe(404);
    expect((await send('DELETE', `/api/clusters/${'é'.repeat(1100)}`)).status).toBe(404);
  });

  it('GET /docs/assets/constructor and other prototype keys are 404', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const res = await send('GET', `/docs/assets/${name}`);
      expect(res.status, name).toBe(404);
      expect(res.body).toEqual({ detail: `No such asset: ${name}` });
    }
    expect((await send('GET', '/docs/assets/swagger-ui.css')).status).toBe(200);
  });

  it('names with control, zero-width or bidi-override characters are refused; names are NFC-normalised', async () => {
    const job = (name: string) =>
      send(
        'POST',
        '/jobs',
        JSON.stringify({ name, image: 'trainer:1', command: ['train'], schedule: null, max_retries: 0 }),
      );
    for (const name of ['bad\u0000name', 'bad\u0007', 'evil\u202Egnp.exe', 'zero\u200Bwidth', 'c1\u0085']) {
      const res = await job(name);
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(res.body).toMatchObject({
        error_type: 'ValidationError',
        detail: [{ loc: ['body', 'name'], msg: expect.stringMatching(/control/) }],
      });
    }
    const composed = await job('caf\u00e9');
    expect(composed.status).toBe(201);
    expect(composed.body.name).toBe('caf\u00e9');
    // The decomposed spelling is the same name.
    expect((await job('cafe\u0301')).status).toBe(409);

    const novita = await send(
      'POST',
      '/api/instances',
      JSON.stringify({ name: 'a\u0001b', productName: 'p', templateId: 't' }),
    );
    expect(novita.status).toBe(400);
    expect(novita.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'name' } });
  });
});
