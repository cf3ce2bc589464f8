import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createChannel } from '../../../agent/channel.js';
import { ControlPlaneClient } from '../../../agent/client.js';
import { silentLogger } from '../../../agent/log.js';
import { awsEndpoint, describeWithMoto, uniqueName } from '../../harness/services.js';

/**
 * The sqs command channel against the AWS API emulator: long-poll receive, delete after handling,
 * with credentials asked of the control plane (POST /agent/credentials), not the environment.
 */
describeWithMoto('agent sqs command channel', () => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  let sqs: SQSClient;
  let queueUrl: string;
  // Stands in for the control plane's credentials route (the emulator accepts any key); the real
  // route is exercised in test/integration/adapters/node-credentials.test.ts.
  let vendor: Server;
  let vendorUrl: string;
  const credentialCalls: (string | undefined)[] = [];

  beforeAll(async () => {
    sqs = new SQSClient({ region, endpoint: awsEndpoint() });
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('agent-cmds') }))).QueueUrl!;
    vendor = createServer((req, res) => {
      credentialCalls.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          accessKeyId: 'ASIAVENDED',
          secretAccessKey: 'vended-secret',
          sessionToken: 'vended-token',
          expiration: new Date(Date.now() + 3600_000).toISOString(),
          region,
          queueUrl,
          endpoint: awsEndpoint(),
        }),
      );
    });
    await new Promise<void>((r) => vendor.listen(0, '127.0.0.1', r));
    vendorUrl = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    if (queueUrl) await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    sqs?.destroy();
    vendor?.closeAllConnections();
    await new Promise((r) => vendor?.close(r));
  });

  it('receives a command envelope and deletes it on ack', async () => {
    // Prepare: the channel exactly as a register response would describe it
    const client = new ControlPlaneClient({
      baseUrl: vendorUrl,
      logger: silentLogger,
      token: 'node-1.secret',
    });
    credentialCalls.length = 0;
    const channel = createChannel({ type: 'sqs', queueUrl, region, endpoint: awsEndpoint() }, client);
    const envelope = {
      commandId: 'cmd-1',
      nodeId: 'n',
      issuedAt: new Date().toISOString(),
      command: { type: 'task.cancel', taskId: 't' },
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(envelope) }));
    // Act
    const deliveries = await channel.receive(AbortSignal.timeout(25_000));
    // Assess
    expect(deliveries).toHaveLength(1);
    expect(JSON.parse(deliveries[0]!.body)).toEqual(envelope);
    await deliveries[0]!.ack();
    // One credentials call for the receive and the delete, with the node's token.
    expect(credentialCalls).toEqual(['POST /agent/credentials Bearer node-1.secret']);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(attrs.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
    channel.close();
  });

  it('a long-poll is cut short by the abort signal (clean shutdown)', async () => {
    const client = new ControlPlaneClient({
      baseUrl: vendorUrl,
      logger: silentLogger,
      token: 'node-1.secret',
    });
    const channel = createChannel({ type: 'sqs', queueUrl, region, endpoint: awsEndpoint() }, client);
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    await expect(channel.receive(controller.signal)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    channel.close();
  });
});
