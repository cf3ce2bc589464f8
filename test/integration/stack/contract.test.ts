/**
 * The Lambda, API Gateway, SQS and Scheduler contracts of the local stack (local/stack), on a small
 * cloud assembly of its own: one function (test/fixtures/lambda-contract) behind an HTTP API and a
 * WebSocket API, fed by an SQS event source with a dead-letter queue, and a schedule group.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startStack, type RunningStack } from '../../../local/stack/stack.js';
import { describeWithMoto, uniqueName } from '../../harness/services.js';
import { eventually } from '../../e2e/harness.js';
import { atIn, FN, TIMEOUT_S, writeContractAssembly } from '../../fixtures/lambda-contract/assembly.js';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** An HTTP request with exact control of repeated headers (fetch joins them). */
function send(
  url: string,
  method: string,
  headers: Record<string, string | string[]>,
  body?: Buffer,
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the fixture's report is loosely typed JSON
type Report = any;
const json = (r: Raw): Report => JSON.parse(r.body.toString('utf8'));

describeWithMoto('local stack: the Lambda, API Gateway, SQS and Scheduler contracts', () => {
  let stack: RunningStack;
  let dir: string;
  let sqs: SQSClient;
  /** Notes the fixture left on the probe queue, in arrival order. */
  const notes: Report[] = [];
  const awsForCalls: string[] = [];
  const collect = async () => {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.physical.Probe!.ref,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    for (const m of out.Messages ?? []) {
      notes.push(JSON.parse(m.Body!));
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: stack.physical.Probe!.ref, ReceiptHandle: m.ReceiptHandle }),
      );
    }
  };
  const noteWhere = (what: string, match: (n: Report) => boolean, timeoutMs = 20_000) =>
    eventually(
      what,
      async () => {
        await collect();
        const found = notes.find(match);
        if (!found) throw new Error(`not among ${notes.length} notes`);
        return found;
      },
      timeoutMs,
      0,
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stack-contract-'));
    writeContractAssembly(dir, atIn(20_000));
    stack = await startStack({
      // Where the IAM check interposes: the endpoint and credentials each function's SDK gets.
      awsFor: (id) => {
        awsForCalls.push(id);
        return {
          endpoint: process.env.AWS_ENDPOINT_URL!,
          accessKeyId: 'contract-key',
          secretAccessKey: 'contract-secret',
        };
      },
      cdkOut: dir,
      port: 0,
      prefix: uniqueName('stc'),
      maxConcurrency: 4,
      scheduleRefreshMs: 500,
    });
    sqs = new SQSClient({
      endpoint: process.env.AWS_ENDPOINT_URL,
      region: process.env.AWS_REGION ?? 'us-east-1',
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    sqs?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('resolves the template: outputs with the local API URL, Fn::Sub / Select / Split in the environment', async () => {
    expect(stack.outputs.ApiUrl).toBe(`${stack.url}/`);
    expect(stack.outputs.WorkQueue).toBe(stack.physical.Work!.ref);
    const res = await send(`${stack.url}/echo/env`, 'GET', {});
    const { env } = json(res);
    expect(env).toEqual({
      PROBE_QUEUE_URL: stack.physical.Probe!.ref,
      WS_CALLBACK_URL: `${stack.url}/live`,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
      FROM_SUB: `aws:b:${stack.physical.Work!.attributes!.QueueName}:\${Literal}`,
      AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
      AWS_ACCESS_KEY_ID: 'contract-key',
    });
    expect(awsForCalls).toEqual([FN]);
  });

  it('builds payload format 2.0 events as API Gateway does, and a context with the remaining time', async () => {
    const res = await send(`${stack.url}/echo/a%20b?x=1&x=2&y=%20z&flag`, 'GET', {
      'x-multi': ['one', 'two'],
      Cookie: 'c1=v1; c2=v2',
      'User-Agent': 'contract-test',
    });
    expect(res.status).toBe(200);
    const { event, context } = json(res);
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'GET /echo/{id}',
      rawPath: '/echo/a%20b',
      rawQueryString: 'x=1&x=2&y=%20z&flag',
      cookies: ['c1=v1', 'c2=v2'],
      queryStringParameters: { x: '1,2', y: ' z', flag: '' },
      pathParameters: { id: 'a b' },
      isBase64Encoded: false,
      requestContext: {
        accountId: expect.stringMatching(/^\d{12}$/),
        apiId: stack.physical.HttpApi!.ref,
        http: {
          method: 'GET',
          path: '/echo/a b',
          protocol: 'HTTP/1.1',
          sourceIp: '127.0.0.1',
          userAgent: 'contract-test',
        },
        routeKey: 'GET /echo/{id}',
        stage: '$default',
        time: expect.stringMatching(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/),
        timeEpoch: expect.any(Number),
      },
    });
    expect(event.headers['x-multi']).toBe('one,two');
    expect(event.headers.cookie).toBeUndefined();
    expect(Object.keys(event.headers).every((k: string) => k === k.toLowerCase())).toBe(true);
    expect(event.body).toBeUndefined();
    expect(res.headers['apigw-requestid']).toBe(event.requestContext.requestId);
    expect(context).toMatchObject({
      functionName: stack.physical[FN]!.ref,
      memoryLimitInMB: '256',
      invokedFunctionArn: stack.physical[FN]!.arn,
      awsRequestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(context.remainingTimeInMillis).toBeGreaterThan(0);
    expect(context.remainingTimeInMillis).toBeLessThanOrEqual(TIMEOUT_S * 1000);

    const binary = Buffer.from([0, 1, 2, 255]);
    const posted = json(
      await send(`${stack.url}/upload`, 'POST', { 'content-type': 'application/octet-stream' }, binary),
    );
    expect(posted.event).toMatchObject({
      routeKey: 'POST /upload',
      body: binary.toString('base64'),
      isBase64Encoded: true,
    });
    const text = json(
      await send(
        `${stack.url}/upload`,
        'POST',
        { 'content-type': 'application/json' },
        Buffer.from('{"a":1}'),
      ),
    );
    expect(text.event).toMatchObject({ body: '{"a":1}', isBase64Encoded: false });
  });

  it('selects routes as API Gateway does: exact over {param} over {proxy+}, method, then $default', async () => {
    const routeOf = async (method: string, path: string) =>
      json(await send(`${stack.url}${path}`, method, {})).event.routeKey;
    expect(await routeOf('GET', '/echo/fixed')).toBe('GET /echo/fixed');
    expect(await routeOf('GET', '/echo/other')).toBe('GET /echo/{id}');
    expect(await routeOf('DELETE', '/files/a/b/c')).toBe('ANY /files/{proxy+}');
    expect(await routeOf('DELETE', '/echo/other')).toBe('$default');
    expect(await routeOf('GET', '/echo/other/')).toBe('$default');
    expect(await routeOf('GET', '/nowhere')).toBe('$default');
    const proxy = json(await send(`${stack.url}/files/a/b%2Fc`, 'GET', {})).event;
    expect(proxy.pathParameters).toEqual({ proxy: 'a/b/c' });
  });

  it("answers by the 2.0 response rules, with API Gateway's errors for a failed or late function", async () => {
    const plain = await send(`${stack.url}/plain`, 'GET', {});
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('application/json');
    expect(json(plain)).toEqual({ hello: 'world' });

    const binary = await send(`${stack.url}/binary`, 'GET', {});
    expect(binary.status).toBe(201);
    expect([...binary.body]).toEqual([0, 1, 2, 255]);
    expect(binary.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2']);

    const failed = await send(`${stack.url}/fail`, 'GET', {});
    expect(failed.status).toBe(500);
    expect(json(failed)).toEqual({ message: 'Internal Server Error' });

    // Over Lambda's 6 MB response quota: the invocation fails, API Gateway answers 500.
    const huge = await send(`${stack.url}/huge`, 'GET', {});
    expect(huge.status).toBe(500);
    expect(json(huge)).toEqual({ message: 'Internal Server Error' });

    const late = await send(`${stack.url}/slow`, 'GET', {});
    expect(late.status).toBe(503);
    expect(json(late)).toEqual({ message: 'Service Unavailable' });
  });

  it("answers CORS preflight from the API configuration and replaces the function's CORS headers", async () => {
    const preflight = await send(`${stack.url}/echo/x`, 'OPTIONS', {
      origin: 'http://app.example',
      'access-control-request-method': 'POST',
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': 'http://app.example',
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-headers': 'content-type',
      'access-control-max-age': '600',
    });
    const foreign = await send(`${stack.url}/echo/x`, 'OPTIONS', {
      origin: 'http://other.example',
      'access-control-request-method': 'POST',
    });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    const simple = await send(`${stack.url}/echo/x`, 'GET', { origin: 'http://app.example' });
    expect(simple.headers['access-control-allow-origin']).toBe('http://app.example');
    expect(simple.headers['access-control-expose-headers']).toBe('x-request-id');
    const noOrigin = await send(`${stack.url}/echo/x`, 'GET', {});
    expect(noOrigin.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('inits once per execution environment, runs one invocation at a time in each, and more than one at once', async () => {
    const fn = stack.functions[FN]!;
    const sequential: Report[] = [];
    for (let i = 0; i < 3; i++)
      sequential.push(json(await send(`${stack.url}/echo/seq`, 'GET', {})).instance);
    // Idle between calls: the same environment serves them, its module scope kept.
    expect(new Set(sequential.map((s) => s.initId)).size).toBe(1);
    expect(sequential.map((s) => s.invocations)).toEqual(
      [1, 2, 3].map((n) => sequential[0].invocations - 1 + n),
    );

    // Three invocations held at a barrier until all three are in flight: they run at the same time.
    const waiting: ServerResponse[] = [];
    const barrier = createServer((_req, res) => {
      waiting.push(res);
      if (waiting.length === 3) for (const r of waiting) r.end('go');
    });
    await new Promise<void>((resolve) => barrier.listen(0, '127.0.0.1', resolve));
    const gate = encodeURIComponent(`http://127.0.0.1:${(barrier.address() as AddressInfo).port}/`);
    const parallel = await Promise.all(
      Array.from({ length: 3 }, () => send(`${stack.url}/echo/par?gate=${gate}`, 'GET', {}).then(json)),
    );
    barrier.close();
    const ids = new Set(parallel.map((p) => p.instance.initId));
    expect(ids.size).toBe(3);
    expect(parallel.every((p) => p.instance.maxActive === 1)).toBe(true);
    expect(fn.peakConcurrency).toBeGreaterThanOrEqual(3);
    // Each environment ran its init once: as many inits as environments ever started.
    expect(fn.initCount).toBe(fn.environments);
  });

  it('ends the environment at the function timeout: API Gateway answers 500, later calls run in a fresh one', async () => {
    const fn = stack.functions[FN]!;
    const environments = fn.environments;
    const initsBefore = fn.initCount;
    const late = await send(`${stack.url}/echo/late?sleep=${TIMEOUT_S * 1000 + 1000}`, 'GET', {});
    expect(late.status).toBe(500);
    expect(json(late)).toEqual({ message: 'Internal Server Error' });
    expect(fn.environments).toBe(environments - 1);
    // As many calls at once as there were environments: one of them needs a new environment (a new init).
    const initIds = new Set<string>();
    await Promise.all(
      Array.from({ length: environments }, () =>
        send(`${stack.url}/echo/after?sleep=300`, 'GET', {}).then((r) =>
          initIds.add(json(r).instance.initId),
        ),
      ),
    );
    expect(initIds.size).toBe(environments);
    expect(fn.initCount).toBe(initsBefore + 1);
  });

  it('feeds SQS batches as Lambda does, deletes what succeeded, and moto dead-letters a failing item after maxReceiveCount', async () => {
    const queueUrl = stack.physical.Work!.ref;
    const bodies = ['ok-1', 'fail-1', 'ok-2'];
    for (const body of bodies)
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: body,
          MessageAttributes: { origin: { DataType: 'String', StringValue: 'contract' } },
        }),
      );

    const batch = await noteWhere(
      'a batch holding ok-1',
      (n) => n.kind === 'batch' && n.records.some((r: Report) => r.body === 'ok-1'),
    );
    const record = batch.records.find((r: Report) => r.body === 'ok-1');
    expect(record).toMatchObject({
      messageId: expect.any(String),
      receiptHandle: expect.any(String),
      body: 'ok-1',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: expect.any(String),
        ApproximateFirstReceiveTimestamp: expect.any(String),
      },
      messageAttributes: { origin: { stringValue: 'contract', dataType: 'String' } },
      md5OfBody: createHash('md5').update('ok-1').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: stack.physical.Work!.arn,
      awsRegion: process.env.AWS_REGION ?? 'us-east-1',
    });
    // The failed item comes back after the visibility timeout, received a second time.
    await noteWhere(
      'fail-1 received twice',
      (n) =>
        n.kind === 'batch' &&
        n.records.some((r: Report) => r.body === 'fail-1' && r.attributes.ApproximateReceiveCount === '2'),
    );
    const dead = await eventually('fail-1 in the dead-letter queue', async () => {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.physical.WorkDlq!.ref,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
        }),
      );
      const bodies = (out.Messages ?? []).map((m) => m.Body);
      expect(bodies).toEqual(['fail-1']);
      return bodies;
    });
    expect(dead).toEqual(['fail-1']);
    // ok-1 and ok-2 were deleted after their first batch: each was handed over exactly once.
    await collect();
    const deliveries = (body: string) =>
      notes.flatMap((n) => (n.kind === 'batch' ? n.records : [])).filter((r: Report) => r.body === body);
    await eventually('ok-2 delivered', async () => {
      await collect();
      expect(deliveries('ok-2').length).toBeGreaterThan(0);
    });
    expect(deliveries('ok-1')).toHaveLength(1);
    expect(deliveries('ok-2')).toHaveLength(1);
    expect(deliveries('fail-1')).toHaveLength(2);
    const attributes = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(attributes.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
  });

  it("fires the template's schedule and one created at runtime, each to its target queue with its Input", async () => {
    const scheduler = new SchedulerClient({
      endpoint: process.env.AWS_ENDPOINT_URL,
      region: process.env.AWS_REGION ?? 'us-east-1',
    });
    await scheduler.send(
      new CreateScheduleCommand({
        Name: 'runtime-once',
        GroupName: stack.physical.Group!.ref,
        ScheduleExpression: atIn(5_000),
        ScheduleExpressionTimezone: 'UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: {
          Arn: stack.physical.Fired!.arn!,
          RoleArn: 'arn:aws:iam::123456789012:role/scheduler',
          Input: '{"fired":"runtime"}',
        },
      }),
    );
    scheduler.destroy();
    const fired: string[] = [];
    await eventually(
      'both firings on the target queue',
      async () => {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: stack.physical.Fired!.ref,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
          }),
        );
        for (const m of out.Messages ?? []) {
          fired.push(m.Body!);
          await sqs.send(
            new DeleteMessageCommand({ QueueUrl: stack.physical.Fired!.ref, ReceiptHandle: m.ReceiptHandle }),
          );
        }
        expect(fired.sort()).toEqual(['{"fired":"runtime"}', '{"fired":"template"}']);
      },
      45_000,
      0,
    );
  }, 60_000);

  it('fires a schedule whose target is a function of the stack by invoking it with the Input', async () => {
    const scheduler = new SchedulerClient({
      endpoint: process.env.AWS_ENDPOINT_URL,
      region: process.env.AWS_REGION ?? 'us-east-1',
    });
    await scheduler.send(
      new CreateScheduleCommand({
        Name: 'runtime-function',
        GroupName: stack.physical.Group!.ref,
        ScheduleExpression: atIn(3_000),
        ScheduleExpressionTimezone: 'UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: {
          Arn: stack.physical[FN]!.arn!,
          RoleArn: 'arn:aws:iam::123456789012:role/scheduler',
          Input: '{"scheduled":"function"}',
          RetryPolicy: { MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 2 },
        },
      }),
    );
    scheduler.destroy();
    const fired = await noteWhere('the scheduled invocation', (n) => n.kind === 'scheduled', 45_000);
    expect(fired.event).toEqual({ scheduled: 'function' });
  }, 60_000);

  it('runs $connect (refusing on a non-2xx answer), routes frames by action, pushes through the Management API, runs $disconnect', async () => {
    const refused = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${stack.wsUrl}?refuse=1`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('the refused handshake opened')));
      ws.on('error', () => undefined);
    });
    expect(refused).toBe(403);

    const ws = new WebSocket(`${stack.wsUrl}?channel=test`, { headers: { 'x-client': 'contract' } });
    const frames: Report[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const connect = await noteWhere(
      'the $connect event',
      (n) => n.kind === 'connect' && n.event.queryStringParameters?.channel === 'test',
    );
    const connectionId = connect.event.requestContext.connectionId as string;
    expect(connect.event).toMatchObject({
      headers: expect.objectContaining({ 'x-client': 'contract' }),
      queryStringParameters: { channel: 'test' },
      requestContext: {
        routeKey: '$connect',
        eventType: 'CONNECT',
        stage: 'live',
        apiId: stack.physical.WsApi!.ref,
        connectionId,
      },
      isBase64Encoded: false,
    });

    ws.send(JSON.stringify({ action: 'push', text: 'hello' }));
    ws.send(JSON.stringify({ action: 'unrouted' }));
    await eventually('the pushed frame and the refusal', () => expect(frames).toHaveLength(2));
    expect(frames).toContainEqual({ pushed: 'hello', connectionId });
    expect(frames).toContainEqual({ message: 'Forbidden', connectionId, requestId: expect.any(String) });

    const info = await send(
      `${stack.wsUrl.replace('ws:', 'http:')}/@connections/${encodeURIComponent(connectionId)}`,
      'GET',
      {},
    );
    expect(info.status).toBe(200);
    expect(json(info)).toMatchObject({
      ConnectedAt: expect.any(String),
      LastActiveAt: expect.any(String),
      Identity: { SourceIp: '127.0.0.1' },
    });

    ws.close(1000);
    const disconnect = await noteWhere(
      'the $disconnect event',
      (n) => n.kind === 'disconnect' && n.event.requestContext.connectionId === connectionId,
    );
    expect(disconnect.event.requestContext).toMatchObject({
      routeKey: '$disconnect',
      eventType: 'DISCONNECT',
      disconnectStatusCode: 1000,
    });
    // Gone after the close: the Management API answers 410 as API Gateway does.
    const gone = await send(
      `${stack.wsUrl.replace('ws:', 'http:')}/@connections/${encodeURIComponent(connectionId)}`,
      'POST',
      {},
      Buffer.from('x'),
    );
    expect(gone.status).toBe(410);
    expect(gone.headers['x-amzn-errortype']).toBe('GoneException');
  });
});
