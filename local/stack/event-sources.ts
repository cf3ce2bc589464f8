import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { InvokeResult } from './lambda.js';

export interface SqsMappingOptions {
  functionLogicalId: string;
  queueUrl: string;
  queueArn: string;
  region: string;
  endpoint: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  reportBatchItemFailures: boolean;
  /** Pollers, i.e. batches in flight at once (Lambda scales them up with the backlog). */
  concurrency: number;
  invoke: (functionLogicalId: string, event: unknown) => Promise<InvokeResult>;
  onError?: (error: unknown) => void;
}

/** Long-poll wait per receive: short enough for a prompt stop. */
const WAIT_SECONDS = 2;

/**
 * An SQS event source mapping as Lambda runs it: long-polls the queue, gathers up to BatchSize
 * messages within the batching window, invokes the function with an SQSEvent, and deletes what
 * succeeded. A function error leaves the whole batch; with ReportBatchItemFailures only the items
 * it names stay. What stays becomes visible again after the queue's visibility timeout, and SQS
 * moves it to the dead-letter queue after maxReceiveCount receives.
 */
export class SqsEventSource {
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly sqs: SQSClient;
  /** Batches handed to the function, for tests and diagnostics. */
  batches = 0;

  constructor(private readonly options: SqsMappingOptions) {
    this.sqs = new SQSClient({ region: options.region, endpoint: options.endpoint });
  }

  start(): void {
    for (let i = 0; i < Math.max(1, this.options.concurrency); i++) this.loops.push(this.poll());
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
    this.sqs.destroy();
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: this.abort.signal },
    );
    return out.Messages ?? [];
  }

  private async poll(): Promise<void> {
    const o = this.options;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const batch = await this.receive(o.batchSize, WAIT_SECONDS);
        if (!batch.length) continue;
        // The batching window: keep gathering until the batch is full or the window has passed.
        const windowEnd = Date.now() + o.maximumBatchingWindowSeconds * 1000;
        while (batch.length < o.batchSize && Date.now() < windowEnd && !signal.aborted) {
          const wait = Math.min(WAIT_SECONDS, Math.max(0, Math.floor((windowEnd - Date.now()) / 1000)));
          const more = await this.receive(o.batchSize - batch.length, wait);
          if (!more.length && wait === 0) break;
          batch.push(...more);
        }
        await this.handle(batch);
      } catch (error) {
        if (signal.aborted) break;
        o.onError?.(error);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async handle(messages: Message[]): Promise<void> {
    const o = this.options;
    const records: SQSRecord[] = messages.map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body ?? '',
      attributes: m.Attributes as SQSRecord['attributes'],
      messageAttributes: Object.fromEntries(
        Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
          k,
          {
            stringValue: v.StringValue,
            binaryValue: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : undefined,
            stringListValues: v.StringListValues ?? [],
            binaryListValues: (v.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
            dataType: v.DataType!,
          },
        ]),
      ),
      md5OfBody: m.MD5OfBody ?? '',
      ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
      eventSource: 'aws:sqs',
      eventSourceARN: o.queueArn,
      awsRegion: o.region,
    }));
    this.batches++;
    const result = await o.invoke(o.functionLogicalId, { Records: records });
    if (!result.ok) return; // the whole batch returns to the queue
    let succeeded = records;
    if (o.reportBatchItemFailures) {
      const failed = batchItemFailures(result.payload, records);
      if (failed === 'all') return;
      succeeded = records.filter((r) => !failed.has(r.messageId));
    }
    for (let i = 0; i < succeeded.length; i += 10) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: o.queueUrl,
          Entries: succeeded
            .slice(i, i + 10)
            .map((r, n) => ({ Id: String(n), ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
  }
}

/**
 * The ids a ReportBatchItemFailures response names. As Lambda does, a response it cannot read, or
 * an item id that is empty or not in the batch, fails the whole batch.
 */
export function batchItemFailures(payload: string, records: SQSRecord[]): Set<string> | 'all' {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return 'all';
  }
  if (value === null || typeof value !== 'object') return new Set();
  const failures = (value as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return 'all';
  const ids = new Set(records.map((r) => r.messageId));
  const failed = new Set<string>();
  for (const f of failures) {
    const itemIdentifier = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof itemIdentifier !== 'string' || !ids.has(itemIdentifier)) return 'all';
    failed.add(itemIdentifier);
  }
  return failed;
}
