import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import { createHttpHandler } from '../../../functions/core/http.js';
import { route } from '../../../functions/core/route.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';
import { createLocalServer } from '../../../local/http-server.js';

/** Lines the pipeline and the handlers wrote, parsed (Powertools writes to stdout and stderr). */
const lines: Record<string, unknown>[] = [];
const original = { out: process.stdout.write, err: process.stderr.write };

let server: Server;
let base: string;
let stopCtx: () => Promise<void>;

beforeAll(async () => {
  const config = loadConfig({ LOG_LEVEL: 'DEBUG' });
  const embedded = await createEmbeddedContext(config, {});
  stopCtx = embedded.stop;
  const routes = [
    route({
      method: 'POST',
      path: '/things/{commandId}/result',
      summary: 'logs twice, once after a pause',
      tags: ['Test'],
      errorStyle: 'fastapi',
      scope: 'public',
      handler: async (req, ctx) => {
        ctx.logger.info('first step', { token: 'must-not-appear' });
        await new Promise((r) => setTimeout(r, 5));
        ctx.logger.warn('second step');
        return { ok: (req.params as Record<string, string> | undefined)?.['commandId'] };
      },
    }),
  ];
  const handler = createHttpHandler({
    routes,
    context: async () => embedded.ctx,
    corsOrigins: config.CORS_ORIGINS,
  });
  server = createLocalServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const write = ((chunk: string | Uint8Array) => {
    for (const l of String(chunk).split('\n').filter(Boolean)) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = write;
  process.stderr.write = write;
});

afterAll(async () => {
  process.stdout.write = original.out;
  process.stderr.write = original.err;
  await new Promise((r) => server.close(r));
  await stopCtx();
});

describe('request and command ids on every line of a request (the real HTTP pipeline)', () => {
  it('puts the request id of x-request-id and the command id of the path on each line, concurrent requests apart', async () => {
    const answers = await Promise.all(
      ['cmd-a', 'cmd-b', 'cmd-c'].map(async (id) => {
        const res = await fetch(`${base}/things/${id}/result`, { method: 'POST' });
        expect(res.status).toBe(200);
        return { id, requestId: res.headers.get('x-request-id')! };
      }),
    );
    for (const { id, requestId } of answers) {
      const mine = lines.filter((l) => l['requestId'] === requestId);
      // The handler's two lines and the access line.
      expect(mine.map((l) => l['message']).sort()).toEqual(['first step', 'request', 'second step']);
      for (const l of mine) expect(l['commandId']).toBe(id);
    }
    expect(JSON.stringify(lines)).not.toContain('must-not-appear');
  });
});
