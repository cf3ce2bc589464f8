import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetAwsClients, sqsClient } from '../../../functions/adapters/aws-clients.js';
import { QueueBatchError, SqsQueue } from '../../../functions/adapters/sqs-queue.js';
import type { Config } from '../../../functions/core/config.js';
import type { ReceivedMessage } from '../../../functions/ports/queue.js';
import { describeWithMoto, resetMoto, testConfig } from '../../harness/services.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeWithMoto('SqsQueue against the AWS emulator', () => {
  let config: Config;
  let queue: SqsQueue;

  beforeAll(async () => {
    await resetMoto();
    config = testConfig();
    queue = new SqsQueue(config);
  });

  afterAll(() => resetAwsClients());

  async function attributes(physicalName: string) {
    const client = sqsClient(config);
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: physicalName }));
    const out = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
    return out.Attributes ?? {};
  }

  it('ensure creates the prefixed queue and its dead-letter queue, and converges on a second call', async () => {
    await queue.ensure({ name: 'ensure', visibilityTimeoutSeconds: 7, maxReceiveCount: 3 });
    const first = await attributes(`${config.QUEUE_PREFIX}ensure`);
    const dlq = await attributes(`${config.QUEUE_PREFIX}ensure-dlq`);
    expect(first.VisibilityTimeout).toBe('7');
    expect(JSON.parse(first.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: dlq.QueueArn,
      maxReceiveCount: 3,
    });

    await queue.ensure({ name: 'ensure', visibilityTimeoutSeconds: 9, maxReceiveCount: 4 });
    const second = await attributes(`${config.QUEUE_PREFIX}ensure`);
    expect(second.VisibilityTimeout).toBe('9');
    expect(JSON.parse(second.RedrivePolicy ?? '{}').maxReceiveCount).toBe(4);
    expect(second.QueueArn).toBe(first.QueueArn);
  });

  it('sends, receives with receiveCount and sentAt, and deletes', async () => {
    await queue.ensure({ name: 'basic' });
    const before = Date.now();
    const id = await queue.send('basic', '{"hello":"world"}');

    const [message, ...rest] = await queue.receive('basic', { waitSeconds: 1, maxMessages: 10 });
    expect(rest).toHaveLength(0);
    expect(message).toMatchObject({ messageId: id, body: '{"hello":"world"}', receiveCount: 1 });
    expect(message!.receiptHandle).not.toBe('');
    expect(message!.sentAt).toBeGreaterThanOrEqual(before - 1000);
    expect(message!.sentAt).toBeLessThanOrEqual(Date.now() + 1000);

    await queue.delete('basic', message!.receiptHandle);
    expect(await queue.receive('basic', { waitSeconds: 0 })).toEqual([]);
  });

  it('a long poll returns as soon as a message arrives', async () => {
    await queue.ensure({ name: 'longpoll' });
    const started = Date.now();
    const polling = queue.receive('longpoll', { waitSeconds: 10 });
    await sleep(500);
    await queue.send('longpoll', 'late');
    const messages = await polling;
    const elapsed = Date.now() - started;
    expect(messages.map((m) => m.body)).toEqual(['late']);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('an aborted long poll ends early with no messages', async () => {
    await queue.ensure({ name: 'abort' });
    const controller = new AbortController();
    const started = Date.now();
    const polling = queue.receive('abort', { waitSeconds: 20, signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    expect(await polling).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
    // Already aborted: no call at all.
    expect(await queue.receive('abort', { signal: controller.signal })).toEqual([]);
  });

  it('redelivers after the visibility timeout with receiveCount 2', async () => {
    await queue.ensure({ name: 'visibility', visibilityTimeoutSeconds: 1, maxReceiveCount: 5 });
    await queue.send('visibility', 'again');
    const [first] = await queue.receive('visibility', { waitSeconds: 1 });
    expect(first?.receiveCount).toBe(1);
    // Invisible while the timeout runs...
    expect(await queue.receive('visibility', { waitSeconds: 0 })).toEqual([]);
    await sleep(1_300);
    // ...and back afterwards.
    const [second] = await queue.receive('visibility', { waitSeconds: 2 });
    expect(second).toMatchObject({ messageId: first!.messageId, body: 'again', receiveCount: 2 });
  });

  it('changeVisibility makes a message visible again at once', async () => {
    await queue.ensure({ name: 'change', visibilityTimeoutSeconds: 60 });
    await queue.send('change', 'retry-me');
    const [first] = await queue.receive('change', { waitSeconds: 1 });
    await queue.changeVisibility('change', first!.receiptHandle, 0);
    const [second] = await queue.receive('change', { waitSeconds: 1 });
    expect(second).toMatchObject({ messageId: first!.messageId, receiveCount: 2 });
  });

  it('moves a message to the dead-letter queue after maxReceiveCount receives', async () => {
    await queue.ensure({ name: 'poison', visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
    const id = await queue.send('poison', 'poison-pill');
    for (const expected of [1, 2]) {
      const [m] = await queue.receive('poison', { waitSeconds: 2 });
      expect(m).toMatchObject({ messageId: id, receiveCount: expected });
      await sleep(1_200);
    }
    // The third receive exceeds maxReceiveCount: SQS moves the message instead of delivering it.
    expect(await queue.receive('poison', { waitSeconds: 1 })).toEqual([]);
    const dead = await queue.receive('poison-dlq', { waitSeconds: 2 });
    expect(dead.map((m) => m.body)).toEqual(['poison-pill']);
  });

  it('sends, receives and deletes a batch of 25 in chunks of 10', async () => {
    await queue.ensure({ name: 'batch', visibilityTimeoutSeconds: 60 });
    const bodies = Array.from({ length: 25 }, (_, i) => `message-${i}`);
    const ids = await queue.sendBatch('batch', bodies);
    expect(ids).toHaveLength(25);
    expect(new Set(ids).size).toBe(25);

    const received = await collect(queue, 'batch', 25);
    expect(received.map((m) => m.messageId).sort()).toEqual([...ids].sort());
    expect(received.map((m) => m.body).sort()).toEqual([...bodies].sort());

    await queue.deleteBatch(
      'batch',
      received.map((m) => m.receiptHandle),
    );
    const attrs = await attributes(`${config.QUEUE_PREFIX}batch`);
    expect(attrs.ApproximateNumberOfMessages).toBe('0');
    expect(attrs.ApproximateNumberOfMessagesNotVisible).toBe('0');
  });

  it('surfaces failed batch entries as a QueueBatchError with their positions in the input', async () => {
    await queue.ensure({ name: 'batch-fail', visibilityTimeoutSeconds: 60 });
    await queue.sendBatch(
      'batch-fail',
      Array.from({ length: 11 }, (_, i) => `m-${i}`),
    );
    const handles = (await collect(queue, 'batch-fail', 11)).map((m) => m.receiptHandle);
    expect(handles).toHaveLength(11);
    // The bad entry is the 12th: second chunk, so its index proves chunk offsets are mapped back.
    const failure = await queue
      .deleteBatch('batch-fail', [...handles, 'not-a-receipt-handle'])
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(QueueBatchError);
    expect((failure as QueueBatchError).operation).toBe('delete');
    expect((failure as QueueBatchError).failures.map((f) => f.index)).toEqual([11]);
    // The good entries went through.
    const attrs = await attributes(`${config.QUEUE_PREFIX}batch-fail`);
    expect(attrs.ApproximateNumberOfMessagesNotVisible).toBe('0');
  });

  it('remove deletes the queue and its dead-letter queue; ping answers', async () => {
    await queue.ping();
    await queue.ensure({ name: 'doomed' });
    await queue.send('doomed', 'x');
    await queue.remove('doomed');
    const client = sqsClient(config);
    for (const name of ['doomed', 'doomed-dlq']) {
      await expect(
        client.send(new GetQueueUrlCommand({ QueueName: `${config.QUEUE_PREFIX}${name}` })),
      ).rejects.toMatchObject({ name: 'QueueDoesNotExist' });
    }
    // Removing again is not an error, and a cached URL does not outlive the queue.
    await queue.remove('doomed');
    await expect(queue.send('doomed', 'y')).rejects.toMatchObject({ name: 'QueueDoesNotExist' });
  });
});

/** Receives until `count` messages were taken or the queue stays empty. */
async function collect(queue: SqsQueue, name: string, count: number): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  for (let empty = 0; out.length < count && empty < 3;) {
    const batch = await queue.receive(name, { waitSeconds: 1, maxMessages: 10 });
    if (batch.length === 0) empty++;
    out.push(...batch);
  }
  return out;
}
