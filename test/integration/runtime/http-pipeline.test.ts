import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../../functions/core/config.js';
import { NotFoundError } from '../../../functions/core/errors.js';
import { createHttpHandler, reply } from '../../../functions/core/http.js';
import { route } from '../../../functions/core/route.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';
import { createLocalServer } from '../../../local/http-server.js';

const widgets = new Map<string, { name: string; size: number }>();

const routes = [
  route({
    method: 'POST',
    path: '/widgets',
    summary: 'create',
    tags: [],
    errorStyle: 'fastapi',
    scope: 'user',
    body: z.object({ name: z.string().min(1), size: z.number().int().min(1).max(10) }),
    successStatus: 201,
    handler: async (req) => {
      widgets.set(req.body.name, req.body);
      return req.body;
    },
  }),
  route({
    method: 'GET',
    path: '/widgets/{name}',
    summary: 'get',
    tags: [],
    errorStyle: 'fastapi',
    scope: 'user',
    params: z.object({ name: z.string() }),
    query: z.object({ verbose: z.coerce.boolean().default(false) }),
    handler: async (req) => {
      const w = widgets.get(req.params.name);
      if (!w) throw new NotFoundError(`Widget ${req.params.name} not found`);
      return { ...w, verbose: req.query.verbose };
    },
  }),
  route({
    method: 'POST',
    path: '/api/instances',
    summary: 'novita-style create',
    tags: [],
    errorStyle: 'novita',
    scope: 'user',
    body: z.object({ productName: z.string() }),
    handler: async () => reply(201, { ok: true }),
  }),
  route({
    method: 'GET',
    path: '/boom',
    summary: 'fails',
    tags: [],
    errorStyle: 'fastapi',
    scope: 'public',
    handler: async () => {
      throw new Error('secret internal detail');
    },
  }),
];

let server: Server;
let base: string;
let stopCtx: () => Promise<void>;

beforeAll(async () => {
  const config = loadConfig({ LOG_LEVEL: 'SILENT', MAX_BODY_BYTES: '1024' });
  const embedded = await createEmbeddedContext(config, {});
  stopCtx = embedded.stop;
  const handler = createHttpHandler({ routes, context: async () => embedded.ctx, corsOrigins: config.CORS_ORIGINS });
  server = createLocalServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await stopCtx();
});

const post = (path: string, body: string, type = 'application/json') =>
  fetch(base + path, { method: 'POST', body, headers: { 'content-type': type } });

describe('HTTP pipeline', () => {
  it('validates, runs the handler and answers with the success status and a request id', async () => {
    const res = await post('/widgets', JSON.stringify({ name: 'w1', size: 3 }));
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toMatch(/[0-9a-f-]{36}/);
    expect(await res.json()).toEqual({ name: 'w1', size: 3 });
    const got = await fetch(`${base}/widgets/w1?verbose=true`);
    expect(await got.json()).toEqual({ name: 'w1', size: 3, verbose: true });
  });

  it('answers validation errors in the FastAPI loc/msg/type shape and changes nothing', async () => {
    const res = await post('/widgets', JSON.stringify({ name: 'w2', size: 99 }));
    expect(res.status).toBe(422);
    const body = (await res.json()) as { detail: { loc: unknown[]; msg: string; type: string }[] };
    expect(body.detail[0]).toMatchObject({ loc: ['body', 'size'], type: 'value_error.number.not_le' });
    expect(widgets.has('w2')).toBe(false);
    const missing = await post('/widgets', JSON.stringify({ size: 1 }));
    expect(((await missing.json()) as { detail: unknown[] }).detail[0]).toMatchObject({ loc: ['body', 'name'], msg: 'field required', type: 'value_error.missing' });
  });

  it('answers a missing body, malformed JSON and a wrong content type clearly', async () => {
    const none = await fetch(`${base}/widgets`, { method: 'POST' });
    expect(none.status).toBe(422);
    expect(((await none.json()) as { detail: unknown[] }).detail[0]).toMatchObject({ loc: ['body'] });
    const bad = await post('/widgets', '{"name": ');
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { detail: unknown[] }).detail[0]).toMatchObject({ type: 'value_error.jsondecode' });
    const wrong = await post('/widgets', 'name=w', 'application/x-www-form-urlencoded');
    expect(wrong.status).toBe(415);
    expect(await wrong.json()).toEqual({ detail: 'Content-Type must be application/json' });
  });

  it('refuses an oversized body with 413', async () => {
    const res = await post('/widgets', JSON.stringify({ name: 'x'.repeat(2000), size: 1 }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/exceeds 1024 bytes/);
  });

  it('answers 404 for an unknown route and 405 with Allow for a wrong method', async () => {
    const nf = await fetch(`${base}/nothing/here`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { detail: string }).detail).toMatch(/Not Found/);
    const na = await fetch(`${base}/widgets`, { method: 'GET' });
    expect(na.status).toBe(405);
    expect(na.headers.get('allow')).toBe('POST');
    const missing = await fetch(`${base}/widgets/ghost`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: 'Widget ghost not found' });
  });

  it('uses the Novita error shape on Novita routes, unknown ones included', async () => {
    const res = await post('/api/instances', JSON.stringify({}));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'productName' } });
    expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    expect(Date.parse(body.error.timestamp as string)).not.toBeNaN();
    const nf = await fetch(`${base}/api/instances/x/y/z`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('hides internal error details', async () => {
    const res = await fetch(`${base}/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('secret');
    expect(JSON.parse(text)).toEqual({ detail: 'Internal Server Error' });
  });

  it('allows the configured CORS origins only', async () => {
    const ok = await fetch(`${base}/widgets/w1`, { headers: { origin: 'http://localhost:3000' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    const other = await fetch(`${base}/widgets/w1`, { headers: { origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).not.toBe('http://evil.example');
    const preflight = await fetch(`${base}/widgets`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:3000', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:3000');
    // As the stack's preflight: a browser may then send JSON writes with a key.
    expect(preflight.headers.get('access-control-allow-methods')?.split(', ')).toEqual(
      expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
    );
    expect(preflight.headers.get('access-control-allow-headers')?.split(', ')).toEqual(
      expect.arrayContaining(['authorization', 'content-type']),
    );
  });
});
