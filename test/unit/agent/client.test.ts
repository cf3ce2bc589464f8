import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RegisterRequest } from '../../../protocol/messages.js';
import { ControlPlaneClient, ControlPlaneError } from '../../../agent/client.js';
import { inLogScope, silentLogger } from '../../../agent/log.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let base: string;
let handler: Handler;
const requests: Array<{
  method: string;
  url: string;
  auth: string | undefined;
  body: string;
  requestId?: string | string[];
}> = [];

beforeEach(async () => {
  requests.length = 0;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        auth: req.headers.authorization,
        body,
        requestId: req.headers['x-request-id'],
      });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const registerBody = {
  nodeName: 'n1',
  hostname: 'h',
  addresses: [],
  arch: 'x64',
  os: 'linux',
  cpuCount: 1,
  memoryMb: 1,
  diskGb: 1,
  gpus: [],
  labels: {},
  agentVersion: '0',
} satisfies RegisterRequest;
const fast = { baseMs: 1, maxMs: 5 };

describe('ControlPlaneClient', () => {
  it('registers with the API key, then uses the returned token', async () => {
    handler = (req, _b, res) => {
      if (req.url === '/agent/register')
        json(res, 200, {
          nodeId: 'n-1',
          token: 'tok-1',
          channel: { type: 'http' },
          heartbeatIntervalSeconds: 15,
        });
      else json(res, 200, {});
    };
    const client = new ControlPlaneClient({ baseUrl: `${base}/`, apiKey: 'key-123', logger: silentLogger });
    const reg = await client.register(registerBody);
    await inLogScope({ requestId: 'beat-42' }, () =>
      client.heartbeat({
        metrics: {
          cpuPercent: null,
          memoryUsedMb: null,
          memoryTotalMb: null,
          diskUsedGb: null,
          diskTotalGb: null,
          gpus: [],
        },
        containers: [],
        loadedModels: [],
      }),
    );
    expect(reg.nodeId).toBe('n-1');
    // Each call names the operation it belongs to, so the control plane's lines can be matched.
    expect(requests[0]!.requestId).toMatch(/^agent-/);
    expect(requests[1]!.requestId).toBe('beat-42');
    expect(requests.map((r) => [r.url, r.auth])).toEqual([
      ['/agent/register', 'Bearer key-123'],
      ['/agent/heartbeat', 'Bearer tok-1'],
    ]);
  });

  it('re-registers once on 401 and repeats the call with the new token', async () => {
    let token = 'old';
    handler = (req, _b, res) => {
      if (req.headers.authorization !== `Bearer ${token}`) return json(res, 401, { message: 'bad token' });
      json(res, 200, {});
    };
    const client = new ControlPlaneClient({
      baseUrl: base,
      token: 'stale',
      logger: silentLogger,
      backoff: fast,
    });
    let reRegistrations = 0;
    client.setReRegister(async () => {
      reRegistrations++;
      client.setToken((token = 'fresh'));
    });
    await client.reportResult('cmd-1', { status: 'succeeded', output: {} });
    expect(reRegistrations).toBe(1);
    expect(requests.map((r) => r.auth)).toEqual(['Bearer stale', 'Bearer fresh']);
    expect(requests[1]!.url).toBe('/agent/commands/cmd-1/result');
  });

  it('a 401 right after re-registering is a real refusal', async () => {
    handler = (_req, _b, res) => json(res, 401, {});
    const client = new ControlPlaneClient({ baseUrl: base, token: 't', logger: silentLogger, backoff: fast });
    client.setReRegister(async () => undefined);
    await expect(
      client.postEvents([{ type: 'task.progress', taskId: 't', progress: 1, at: 'now' }]),
    ).rejects.toMatchObject({ status: 401 });
    expect(requests).toHaveLength(2);
  });

  it('retries 503 and network errors with backoff, not 400', async () => {
    let n = 0;
    handler = (_req, _b, res) => (++n < 3 ? json(res, 503, {}) : json(res, 200, {}));
    const client = new ControlPlaneClient({ baseUrl: base, token: 't', logger: silentLogger, backoff: fast });
    await client.ack(['rh-1']);
    expect(n).toBe(3);
    expect(JSON.parse(requests[2]!.body)).toEqual({ receiptHandles: ['rh-1'] });

    handler = (_req, _b, res) => json(res, 400, { message: 'bad' });
    requests.length = 0;
    await expect(client.ack(['rh-1'])).rejects.toBeInstanceOf(ControlPlaneError);
    expect(requests).toHaveLength(1);

    const down = new ControlPlaneClient({
      baseUrl: 'http://127.0.0.1:1',
      token: 't',
      logger: silentLogger,
      backoff: fast,
    });
    await expect(down.reportResult('c', { status: 'failed', output: {} }, { attempts: 2 })).rejects.toThrow();
  });

  it('times out a call that hangs', async () => {
    handler = () => undefined;
    const client = new ControlPlaneClient({
      baseUrl: base,
      token: 't',
      logger: silentLogger,
      timeouts: { heartbeatMs: 100 },
    });
    const started = Date.now();
    await expect(
      client.heartbeat({
        metrics: {
          cpuPercent: null,
          memoryUsedMb: null,
          memoryTotalMb: null,
          diskUsedGb: null,
          diskTotalGb: null,
          gpus: [],
        },
        containers: [],
        loadedModels: [],
      }),
    ).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('long-polls commands; bodies as JSON text or objects', async () => {
    handler = (_req, _b, res) =>
      json(res, 200, {
        messages: [
          { receiptHandle: 'a', body: '{"commandId":"1"}' },
          { receiptHandle: 'b', body: { commandId: '2' } },
        ],
      });
    const client = new ControlPlaneClient({ baseUrl: base, token: 't', logger: silentLogger });
    const messages = await client.pollCommands(1, 5);
    expect(requests[0]!.url).toBe('/agent/commands?wait=1&max=5');
    expect(messages.map((m) => JSON.parse(m.body))).toEqual([{ commandId: '1' }, { commandId: '2' }]);
  });
});
