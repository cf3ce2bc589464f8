import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call } from '../../harness/scripted-agent.js';

const API_KEY = 'unasked-api-key-0123456789';
const MAX_BODY = 64 * 1024;

/** Opens a POST and writes `first` bytes of its body, leaving the rest unsent; resolves with the answer. */
function partialPost(
  base: string,
  path: string,
  options: { first: number; headers?: Record<string, string> },
): Promise<{ status: number; body: string; connection: string | undefined }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            connection: res.headers.connection,
          }),
        );
      },
    );
    // The server closes the connection under the unsent rest: that is the point.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    if (options.first > 0) req.write(Buffer.alloc(options.first, 0x20));
    else req.flushHeaders();
  });
}

/**
 * The embedded runtime sends nothing anywhere unasked and spends nothing on requests it will
 * refuse: the key is checked before the body is read, a body is read up to MAX_BODY_BYTES only,
 * the AI routes answer 503 with a reason when no model is configured, and without AWS
 * credentials the SDK never asks the instance metadata service.
 */
describe('local HTTP server: the key before the body, MAX_BODY_BYTES read at most', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: undefined,
        API_AUTH: 'true',
        LOG_LEVEL: 'SILENT',
        MAX_BODY_BYTES: String(MAX_BODY),
      },
    });
    await rt.ctx.secrets.put('api-key', API_KEY);
    resetApiKeyCache();
  });
  afterAll(async () => rt?.stop());

  it('answers 401 to an unauthenticated upload while most of its body is still unsent', async () => {
    // Chunked, 64 KiB sent and the end never: answered only if the server did not wait for the body.
    const chunked = await partialPost(rt.url, '/api/swarm/services', { first: 64 * 1024 });
    expect(chunked.status).toBe(401);
    expect(JSON.parse(chunked.body)).toEqual({ detail: 'Invalid or missing API key' });
    expect(chunked.connection).toBe('close');
    // A declared 50 MiB, nothing sent.
    const declared = await partialPost(rt.url, '/api/swarm/services', {
      first: 0,
      headers: { 'content-length': String(50 * 1024 * 1024) },
    });
    expect(declared.status).toBe(401);
    // Agent routes: the node credential first, too.
    const agent = await partialPost(rt.url, '/agent/events', {
      first: 32 * 1024,
      headers: { authorization: 'Bearer not-a-node.token' },
    });
    expect(agent.status).toBe(401);
    expect(JSON.parse(agent.body)).toEqual({ detail: 'Invalid agent token' });
    // Novita routes keep their own shape.
    const novita = await partialPost(rt.url, '/api/instances', { first: 16 * 1024 });
    expect(novita.status).toBe(401);
    expect(JSON.parse(novita.body).error).toMatchObject({ code: 'AUTHENTICATION_ERROR' });
  });

  it('answers 413 in the route shape once MAX_BODY_BYTES is passed, without waiting for the rest', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const streamed = await partialPost(rt.url, '/api/swarm/services', {
      first: MAX_BODY + 4096,
      headers: auth,
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body)).toEqual({ detail: `Request body exceeds ${MAX_BODY} bytes` });
    const declared = await partialPost(rt.url, '/api/swarm/services', {
      first: 0,
      headers: { ...auth, 'content-length': String(10 * MAX_BODY) },
    });
    expect(declared.status).toBe(413);
    // Exactly the limit is fine: the body is read and validated as usual.
    const exact = await call(rt.url, 'POST', '/api/swarm/services', { name: 'x'.repeat(10) }, auth);
    expect(exact.status).toBe(400);
    expect(exact.body.detail[0].loc).toEqual(['body', 'image']);
  });
});

describe('the embedded runtime without AWS credentials', () => {
  const saved = { ...process.env };
  let imds: Server;
  let imdsHits = 0;
  let imdsUrl = '';
  const bare = () => {
    const env: Record<string, string | undefined> = { ...process.env };
    for (const k of Object.keys(env))
      if (/^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE)$/.test(k)) delete env[k];
    return { ...env, AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT' };
  };

  beforeAll(async () => {
    // A stand-in metadata service on loopback: it counts, so a lookup cannot pass unseen.
    imds = createServer((req, res) => {
      imdsHits++;
      req.resume();
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    imdsUrl = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
    for (const k of [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      'AWS_PROFILE',
      'AWS_EC2_METADATA_DISABLED',
    ])
      delete process.env[k];
    // No shared files either: the chain would otherwise stop there.
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
    process.env.AWS_CONFIG_FILE = '/nonexistent/config';
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imdsUrl;
  });
  afterAll(async () => {
    process.env = saved;
    await new Promise<void>((r) => imds.close(() => r()));
  });

  it('AI routes answer 503 with the reason when no model is configured, asking nobody', async () => {
    const rt = await startRuntime({ port: 0, env: bare() });
    try {
      const res = await call(rt.url, 'POST', '/api/ai/chat', { message: 'hi' });
      expect(res.status).toBe(503);
      expect(res.body.detail).toMatch(/^No AI model is configured: give the control plane AWS credentials/);
      expect(imdsHits).toBe(0);
    } finally {
      await rt.stop();
    }
  });

  it('sets AWS_EC2_METADATA_DISABLED, so the credential chain never asks the metadata service', async () => {
    // Counter-check first: with the lookup explicitly allowed, the stand-in is asked.
    process.env.AWS_EC2_METADATA_DISABLED = 'false';
    const allowed = await startRuntime({ port: 0, env: { ...bare(), AI_ENDPOINT_URL: imdsUrl } });
    try {
      const res = await call(allowed.url, 'POST', '/api/ai/chat', { message: 'hi' });
      expect(res.status).toBe(503);
      expect(imdsHits).toBeGreaterThan(0);
    } finally {
      await allowed.stop();
    }

    delete process.env.AWS_EC2_METADATA_DISABLED;
    imdsHits = 0;
    const rt = await startRuntime({ port: 0, env: { ...bare(), AI_ENDPOINT_URL: imdsUrl } });
    try {
      expect(process.env.AWS_EC2_METADATA_DISABLED).toBe('true');
      const res = await call(rt.url, 'POST', '/api/ai/chat', { message: 'hi' });
      expect(res.status).toBe(503);
      expect(res.body.detail).toMatch(/^The AI model is unreachable/);
      expect(imdsHits).toBe(0);
    } finally {
      await rt.stop();
    }
  });
});
