import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqsCommandChannel } from '../../../agent/sqs-channel.js';

/** Records what the channel asks SQS; hands out two messages on the first receive. */
function fakeSqs() {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      sent.push({ name: command.constructor.name, input: command.input });
      if (command.constructor.name === 'ReceiveMessageCommand')
        return {
          Messages: [
            { ReceiptHandle: 'rh-1', Body: '{}' },
            { ReceiptHandle: 'rh-2', Body: '{}' },
          ],
        };
      return {};
    },
    destroy: () => undefined,
  };
  return { sent, client: client as unknown as SQSClient };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SqsCommandChannel', () => {
  it('leases what it receives briefly and renews the lease until the delivery is acknowledged or settled', async () => {
    // Prepare
    vi.useFakeTimers();
    const { sent, client } = fakeSqs();
    const channel = new SqsCommandChannel({
      queueUrl: 'http://127.0.0.1:1/q',
      region: 'us-east-1',
      credentials: { invalidate: () => undefined } as never,
      client,
    });
    // Act
    const [first, second] = await channel.receive(new AbortController().signal);
    await vi.advanceTimersByTimeAsync(10_000);
    await first!.ack();
    second!.settled!();
    await vi.advanceTimersByTimeAsync(60_000);
    // Assess
    expect(sent[0]).toMatchObject({ name: 'ReceiveMessageCommand', input: { VisibilityTimeout: 30 } });
    const renewals = sent.filter((s) => s.name === 'ChangeMessageVisibilityCommand');
    expect(renewals.map((r) => r.input)).toEqual([
      expect.objectContaining({ ReceiptHandle: 'rh-1', VisibilityTimeout: 30 }),
      expect.objectContaining({ ReceiptHandle: 'rh-2', VisibilityTimeout: 30 }),
    ]);
    expect(sent.filter((s) => s.name === 'DeleteMessageCommand').map((s) => s.input.ReceiptHandle)).toEqual([
      'rh-1',
    ]);
  });
});
