import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { AppContext } from '../functions/core/context.js';
import { EVENTS_QUEUE, processEventBatch, type EventHandler } from '../functions/core/events.js';

/**
 * Plays the SQS → Lambda event source mapping: long-polls the events queue and hands
 * batches to the same worker code Lambda runs, deleting only the records that succeeded.
 */
export class EventPump {
  private readonly abort = new AbortController();
  private loop?: Promise<void>;

  constructor(
    private readonly ctx: AppContext,
    private readonly handlers: Record<string, EventHandler>,
    private readonly waitSeconds = 1,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { queue, logger } = this.ctx;
    while (!this.abort.signal.aborted) {
      try {
        const messages = await queue.receive(EVENTS_QUEUE, {
          maxMessages: 10,
          waitSeconds: this.waitSeconds,
          signal: this.abort.signal,
        });
        if (!messages.length) continue;
        const records = messages.map(
          (m): SQSRecord => ({
            messageId: m.messageId,
            receiptHandle: m.receiptHandle,
            body: m.body,
            attributes: {
              ApproximateReceiveCount: String(m.receiveCount),
              SentTimestamp: String(m.sentAt),
              SenderId: 'local',
              ApproximateFirstReceiveTimestamp: String(Date.now()),
            },
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: `local:${EVENTS_QUEUE}`,
            awsRegion: this.ctx.config.AWS_REGION,
          }),
        );
        const event: SQSEvent = { Records: records };
        const result = await processEventBatch(event, this.handlers, this.ctx);
        const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
        const done = messages.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle);
        if (done.length) await queue.deleteBatch(EVENTS_QUEUE, done);
      } catch (error) {
        if (this.abort.signal.aborted) break;
        logger.warn('event pump receive failed', { error: error as Error });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
