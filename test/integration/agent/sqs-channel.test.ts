import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createChannel } from '../../../agent/channel.js';
import { ControlPlaneClient } from '../../../agent/client.js';
import { silentLogger } from '../../../agent/log.js';
import { awsEndpoint, describeWithMoto, uniqueName } from '../../harness/services.js';

/** The sqs command channel against the AWS API emulator: long-poll receive, delete after handling. */
describeWithMoto('agent sqs command channel', () => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  let sqs: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    sqs = new SQSClient({ region, endpoint: awsEndpoint() });
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('agent-cmds') }))).QueueUrl!;
  });

  afterAll(async () => {
    if (queueUrl) await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    sqs?.destroy();
  });

  it('receives a command envelope and deletes it on ack', async () => {
    // Prepare: the channel exactly as a register response would describe it
    const client = new ControlPlaneClient({ baseUrl: 'http://127.0.0.1:1', logger: silentLogger });
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
    const client = new ControlPlaneClient({ baseUrl: 'http://127.0.0.1:1', logger: silentLogger });
    const channel = createChannel({ type: 'sqs', queueUrl, region, endpoint: awsEndpoint() }, client);
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    await expect(channel.receive(controller.signal)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    channel.close();
  });
});
