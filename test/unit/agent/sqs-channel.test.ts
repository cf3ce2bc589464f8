import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqsCommandChannel } from '../../../agent/sqs-channel.js';
import type { SqsApi } from '../../../agent/sqs-client.js';

/** Records what the channel asks SQS; hands out two messages on the first receive. */
function fakeSqs() {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (name: string, input: object) => {
      sent.push({ name, input: input as Record<string, unknown> });
      if (name === 'ReceiveMessage')
        return {
          Messages: [
            { ReceiptHandle: 'rh-1', Body: '{}' },
            { ReceiptHandle: 'rh-2', Body: '{}' },
          ],
        };
      return {};
    },
  };
  return { sent, client: client as SqsApi };
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
    expect(sent[0]).toMatchObject({ name: 'ReceiveMessage', input: { VisibilityTimeout: 30 } });
    const renewals = sent.filter((s) => s.name === 'ChangeMessageVisibility');
    expect(renewals.map((r) => r.input)).toEqual([
      expect.objectContaining({ ReceiptHandle: 'rh-1', VisibilityTimeout: 30 }),
      expect.objectContaining({ ReceiptHandle: 'rh-2', VisibilityTimeout: 30 }),
    ]);
    expect(sent.filter((s) => s.name === 'DeleteMessage').map((s) => s.input.ReceiptHandle)).toEqual([
      'rh-1',
    ]);
  });
});
