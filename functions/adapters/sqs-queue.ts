import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  type BatchResultErrorEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Config } from '../core/config.js';
import {
  dlqName,
  type Queue,
  type QueueDefinition,
  type ReceivedMessage,
  type ReceiveOptions,
} from '../ports/queue.js';
import { sqsClient } from './aws-clients.js';

/** SQS's own defaults, written out so `ensure` converges a queue back to them. */
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;
export const DEFAULT_MAX_RECEIVE_COUNT = 5;
/** Long polling by default: short polls sample a subset of SQS hosts and can miss waiting messages. */
export const DEFAULT_WAIT_SECONDS = 20;
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600; // the maximum: dead letters wait for a human
const BATCH_LIMIT = 10; // SQS's limit per batch call

/** Some entries of a batch call failed; the others went through. */
export class QueueBatchError extends Error {
  constructor(
    readonly operation: 'send' | 'delete',
    readonly queue: string,
    readonly failures: { index: number; code: string; message: string; senderFault: boolean }[],
    /** Message ids of the entries that were sent (send only), in input order; undefined where it failed. */
    readonly sent: (string | undefined)[] = [],
  ) {
    const first = failures[0];
    super(
      `SQS ${operation} batch on ${queue}: ${failures.length} entr${failures.length === 1 ? 'y' : 'ies'} failed` +
        (first ? ` (first: #${first.index} ${first.code}: ${first.message})` : ''),
    );
    this.name = 'QueueBatchError';
  }
}

const isQueueMissing = (err: unknown) =>
  err instanceof Error &&
  (err.name === 'QueueDoesNotExist' || err.name === 'AWS.SimpleQueueService.NonExistentQueue');

const chunks = <T>(items: T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};

export class SqsQueue implements Queue {
  // Queue URLs never change for a name, so one lookup per queue and process is enough.
  private readonly urls = new Map<string, Promise<string>>();

  constructor(
    private readonly config: Pick<Config, 'QUEUE_PREFIX' | 'AWS_REGION' | 'AWS_ENDPOINT_URL'>,
    private readonly client: SQSClient = sqsClient(config),
  ) {}

  /** The physical queue name for a logical one. */
  physicalName(queue: string): string {
    return `${this.config.QUEUE_PREFIX}${queue}`;
  }

  async ensure(definition: QueueDefinition): Promise<void> {
    const dlqUrl = await this.createOrUpdate(this.physicalName(dlqName(definition.name)), {
      MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS),
    });
    const dlqArn = await this.queueArnByUrl(dlqUrl);
    const url = await this.createOrUpdate(this.physicalName(definition.name), {
      VisibilityTimeout: String(definition.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlqArn,
        maxReceiveCount: definition.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT,
      }),
    });
    this.urls.set(definition.name, Promise.resolve(url));
    this.urls.set(dlqName(definition.name), Promise.resolve(dlqUrl));
  }

  /** The queue's ARN (the target EventBridge Scheduler needs). */
  async arn(queue: string): Promise<string> {
    return this.queueArnByUrl(await this.url(queue));
  }

  async send(queue: string, body: string, options: { delaySeconds?: number } = {}): Promise<string> {
    const out = await this.withUrl(queue, (QueueUrl) =>
      this.client.send(
        new SendMessageCommand({ QueueUrl, MessageBody: body, DelaySeconds: options.delaySeconds }),
      ),
    );
    if (!out.MessageId) throw new Error(`SQS send to ${queue} returned no MessageId`);
    return out.MessageId;
  }

  async sendBatch(queue: string, bodies: string[]): Promise<string[]> {
    const ids: (string | undefined)[] = new Array(bodies.length).fill(undefined);
    const failures: QueueBatchError['failures'] = [];
    let offset = 0;
    for (const chunk of chunks(bodies, BATCH_LIMIT)) {
      const base = offset;
      offset += chunk.length;
      const out = await this.withUrl(queue, (QueueUrl) =>
        this.client.send(
          new SendMessageBatchCommand({
            QueueUrl,
            Entries: chunk.map((MessageBody, i) => ({ Id: String(i), MessageBody })),
          }),
        ),
      );
      for (const ok of out.Successful ?? []) ids[base + Number(ok.Id)] = ok.MessageId;
      failures.push(...(out.Failed ?? []).map((f) => toFailure(f, base)));
    }
    if (failures.length > 0) throw new QueueBatchError('send', queue, failures, ids);
    return ids as string[];
  }

  async receive(queue: string, options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const { signal } = options;
    if (signal?.aborted) return [];
    const QueueUrl = await this.url(queue);
    try {
      const out = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: Math.min(Math.max(options.maxMessages ?? 1, 1), BATCH_LIMIT),
          WaitTimeSeconds: Math.min(Math.max(options.waitSeconds ?? DEFAULT_WAIT_SECONDS, 0), 20),
          VisibilityTimeout: options.visibilityTimeoutSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
        }),
        { abortSignal: signal },
      );
      return (out.Messages ?? []).map((m) => ({
        messageId: m.MessageId ?? '',
        body: m.Body ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
        sentAt: Number(m.Attributes?.SentTimestamp ?? Date.now()),
      }));
    } catch (err) {
      // An aborted poll ends quietly so a poller's loop just checks its signal. A message SQS handed out
      // just before the abort is redelivered after its visibility timeout (at-least-once anyway).
      if (signal?.aborted) return [];
      if (isQueueMissing(err)) this.urls.delete(queue);
      throw err;
    }
  }

  async delete(queue: string, receiptHandle: string): Promise<void> {
    await this.withUrl(queue, (QueueUrl) =>
      this.client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: receiptHandle })),
    );
  }

  async deleteBatch(queue: string, receiptHandles: string[]): Promise<void> {
    const failures: QueueBatchError['failures'] = [];
    let offset = 0;
    for (const chunk of chunks(receiptHandles, BATCH_LIMIT)) {
      const base = offset;
      offset += chunk.length;
      const out = await this.withUrl(queue, (QueueUrl) =>
        this.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl,
            Entries: chunk.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })),
          }),
        ),
      );
      failures.push(...(out.Failed ?? []).map((f) => toFailure(f, base)));
    }
    if (failures.length > 0) throw new QueueBatchError('delete', queue, failures);
  }

  async changeVisibility(queue: string, receiptHandle: string, timeoutSeconds: number): Promise<void> {
    await this.withUrl(queue, (QueueUrl) =>
      this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: timeoutSeconds,
        }),
      ),
    );
  }

  async remove(queue: string): Promise<void> {
    for (const name of [queue, dlqName(queue)]) {
      try {
        const QueueUrl = await this.url(name);
        await this.client.send(new DeleteQueueCommand({ QueueUrl }));
      } catch (err) {
        if (!isQueueMissing(err)) throw err; // already gone: removal is idempotent
      } finally {
        this.urls.delete(name);
      }
    }
  }

  async ping(): Promise<void> {
    await this.client.send(
      new ListQueuesCommand({ QueueNamePrefix: this.config.QUEUE_PREFIX, MaxResults: 1 }),
    );
  }

  /** The queue's URL, looked up once (a failed lookup is not cached). */
  async url(queue: string): Promise<string> {
    let url = this.urls.get(queue);
    if (!url) {
      url = this.client.send(new GetQueueUrlCommand({ QueueName: this.physicalName(queue) })).then((out) => {
        if (!out.QueueUrl) throw new Error(`SQS returned no URL for ${this.physicalName(queue)}`);
        return out.QueueUrl;
      });
      this.urls.set(queue, url);
      url.catch(() => {
        if (this.urls.get(queue) === url) this.urls.delete(queue);
      });
    }
    return url;
  }

  /** Runs a call with the queue's URL; a queue deleted behind our back drops its cached URL. */
  private async withUrl<T>(queue: string, call: (url: string) => Promise<T>): Promise<T> {
    const url = await this.url(queue);
    try {
      return await call(url);
    } catch (err) {
      if (isQueueMissing(err)) this.urls.delete(queue);
      throw err;
    }
  }

  private async queueArnByUrl(QueueUrl: string): Promise<string> {
    const out = await this.client.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const arn = out.Attributes?.QueueArn;
    if (!arn) throw new Error(`SQS returned no QueueArn for ${QueueUrl}`);
    return arn;
  }

  /**
   * Creates the queue, or brings an existing one to these attributes. CreateQueue alone is not
   * idempotent here: it rejects an existing name whose attributes differ (QueueNameExists).
   */
  private async createOrUpdate(QueueName: string, Attributes: Record<string, string>): Promise<string> {
    const existing = await this.client.send(new GetQueueUrlCommand({ QueueName })).then(
      (out) => out.QueueUrl,
      (err: unknown) => {
        if (isQueueMissing(err)) return undefined;
        throw err;
      },
    );
    if (existing) {
      await this.client.send(new SetQueueAttributesCommand({ QueueUrl: existing, Attributes }));
      return existing;
    }
    try {
      const out = await this.client.send(new CreateQueueCommand({ QueueName, Attributes }));
      if (!out.QueueUrl) throw new Error(`SQS returned no URL for new queue ${QueueName}`);
      return out.QueueUrl;
    } catch (err) {
      // Another caller created it between our lookup and create: converge its attributes instead.
      if (!(err instanceof Error && err.name === 'QueueNameExists')) throw err;
      const out = await this.client.send(new GetQueueUrlCommand({ QueueName }));
      if (!out.QueueUrl) throw err;
      await this.client.send(new SetQueueAttributesCommand({ QueueUrl: out.QueueUrl, Attributes }));
      return out.QueueUrl;
    }
  }
}

function toFailure(f: BatchResultErrorEntry, base: number) {
  return {
    index: base + Number(f.Id),
    code: f.Code ?? 'Unknown',
    message: f.Message ?? '',
    senderFault: f.SenderFault ?? false,
  };
}
