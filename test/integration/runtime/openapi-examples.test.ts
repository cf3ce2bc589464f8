/**
 * Swagger's "Try it out", as pre-filled: every POST and PUT of /openapi.json sent with its
 * documented path parameter and body examples to the embedded runtime (no agents, auth off, no
 * registry, Novita or Bedrock). Each answer may be a 404 or 409 for things the examples name
 * that do not exist here, or a 503 for a dependency left unconfigured, but never a refusal of the
 * request's shape (400, 413, 415, 422) and never a 5xx other than 503.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../../functions/core/openapi.js';
import { routes } from '../../../functions/routes.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';

interface Op {
  parameters?: { name: string; in: string; example?: unknown }[];
  requestBody?: { content?: Record<string, { example?: unknown }> };
}
const doc = buildOpenApi(routes, { version: 'test' }) as unknown as {
  paths: Record<string, Record<string, Op>>;
};

/** The operations Try it out sends a JSON body or none with; a multipart upload takes a file. */
const writes = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => method === 'post' || method === 'put')
    .filter(([, op]) => !op.requestBody?.content?.['multipart/form-data'])
    .map(([method, op]) => ({
      id: `${method.toUpperCase()} ${path}`,
      method: method.toUpperCase(),
      path,
      op,
    })),
);
// The node registration first: the agent routes after it are sent with its credential.
writes.sort((a, b) => Number(b.id === 'POST /agent/register') - Number(a.id === 'POST /agent/register'));

describe('every POST and PUT, sent as Swagger pre-fills it, passes validation', () => {
  let rt: Runtime;
  let nodeToken = '';

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        LOG_LEVEL: 'SILENT',
        COMMAND_WAIT_MS: '100',
        AI_ENABLED: 'false',
        NOVITA_BASE_URL: 'http://127.0.0.1:9/v1',
        AI_ENDPOINT_URL: 'http://127.0.0.1:9',
      },
    });
  });
  afterAll(async () => rt?.stop());

  it('documents a body example for each of them that has a body', () => {
    expect(writes.length).toBeGreaterThanOrEqual(50);
    const missing = writes.filter(
      ({ op }) =>
        op.requestBody?.content?.['application/json'] &&
        op.requestBody.content['application/json'].example === undefined,
    );
    expect(missing.map((w) => w.id)).toEqual([]);
  });

  it('answers none of them with 400, 413, 415, 422 or a 5xx other than 503', async () => {
    const refused: string[] = [];
    const seen: Record<string, number> = {};
    for (const w of writes) {
      const url = w.path.replace(/\{(\w+)\}/g, (_, name: string) => {
        const example = w.op.parameters?.find((p) => p.in === 'path' && p.name === name)?.example;
        return encodeURIComponent(String(example));
      });
      const example = w.op.requestBody?.content?.['application/json']?.example;
      const res = await fetch(`${rt.url}${url}`, {
        method: w.method,
        headers: {
          ...(example !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(w.path.startsWith('/agent/') && nodeToken ? { authorization: `Bearer ${nodeToken}` } : {}),
        },
        ...(example !== undefined ? { body: JSON.stringify(example) } : {}),
      });
      const text = await res.text();
      seen[w.id] = res.status;
      // Registration gives the node credential; a rotation replaces it.
      if ((w.id === 'POST /agent/register' || w.id === 'POST /agent/token/rotate') && res.status === 200)
        nodeToken = (JSON.parse(text) as { token: string }).token;
      if ([400, 413, 415, 422].includes(res.status) || (res.status >= 500 && res.status !== 503))
        refused.push(`${w.id} → ${res.status} ${text.slice(0, 300)}`);
    }
    expect(refused).toEqual([]);
    // The registration worked, so the agent routes were judged on their bodies, not a missing credential.
    expect(seen['POST /agent/register']).toBe(200);
    expect(seen['POST /agent/heartbeat']).toBe(200);
    // The pre-filled start is a valid request: it is placed on the example node, whose scripted
    // registration never answers commands (202), or finds it gone offline (409); never a 422.
    expect([202, 409]).toContain(seen['POST /start/container']);
  });
});
