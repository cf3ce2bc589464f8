/**
 * Decorators that meter every port in AWS billing units (see meter.ts). They wrap any adapter, so
 * a suite, a bench or the local runtime can count what the code would cost on AWS:
 *
 * - DynamoDB: metered-store.ts.
 * - SQS: 1 request per 64 KB chunk of payload; S3 by request class and bytes; SSM per call;
 *   WebSocket messages per 32 KB chunk.
 * - The HTTP entry and the events function, per request, invocation, GB-second and log byte:
 *   metered-lambda.ts.
 */
import type { AppContext } from '../core/context.js';
import type { BlobInfo, Blobs } from '../ports/blobs.js';
import type { ConnectionSender } from '../ports/connections.js';
import type { Queue, QueueDefinition, ReceiveOptions, ReceivedMessage } from '../ports/queue.js';
import type { ScheduleSpec, Scheduler, StoredSchedule } from '../ports/scheduler.js';
import type { Secrets } from '../ports/secrets.js';
import type { Meter } from './meter.js';
import { MeteredStore, type MeteredStoreOptions } from './metered-store.js';

export { MeteredStore, tableIndexes, type MeteredStoreOptions, type Projection } from './metered-store.js';
export {
  meterEventHandlers,
  meterHttpHandler,
  operationLabel,
  type LambdaMetering,
} from './metered-lambda.js';

const KB = 1024;

const SQS_CHUNK = 64 * KB;
const sqsRequests = (bytes: number) => Math.max(1, Math.ceil(bytes / SQS_CHUNK));

export class MeteredQueue implements Queue {
  constructor(
    private readonly inner: Queue,
    private readonly meter: Meter,
  ) {
    if (inner.url) this.url = (queue: string) => inner.url!(queue);
    if (inner.releaseInFlight) this.releaseInFlight = (queue: string) => inner.releaseInFlight!(queue);
  }
  url?: (queue: string) => Promise<string>;
  releaseInFlight?: (queue: string) => Promise<number>;

  async ensure(definition: QueueDefinition): Promise<void> {
    this.meter.add('sqs.ensure', { sqsRequests: 1 });
    return this.inner.ensure(definition);
  }
  async send(queue: string, body: string, options?: { delaySeconds?: number }): Promise<string> {
    this.meter.add('sqs.send', { sqsRequests: sqsRequests(Buffer.byteLength(body)) });
    return this.inner.send(queue, body, options);
  }
  async sendBatch(queue: string, bodies: string[]): Promise<string[]> {
    // SendMessageBatch: up to 10 messages a request, billed per 64 KB of the whole payload.
    for (let i = 0; i < bodies.length; i += 10) {
      const bytes = bodies.slice(i, i + 10).reduce((s, b) => s + Buffer.byteLength(b), 0);
      this.meter.add('sqs.sendBatch', { sqsRequests: sqsRequests(bytes) });
    }
    return this.inner.sendBatch(queue, bodies);
  }
  async receive(queue: string, options?: ReceiveOptions): Promise<ReceivedMessage[]> {
    const messages = await this.inner.receive(queue, options);
    const bytes = messages.reduce((s, m) => s + Buffer.byteLength(m.body), 0);
    this.meter.add(messages.length ? 'sqs.receive' : 'sqs.receive.empty', {
      sqsRequests: sqsRequests(bytes),
    });
    return messages;
  }
  async delete(queue: string, receiptHandle: string): Promise<void> {
    this.meter.add('sqs.delete', { sqsRequests: 1 });
    return this.inner.delete(queue, receiptHandle);
  }
  async deleteBatch(queue: string, receiptHandles: string[]): Promise<void> {
    this.meter.add('sqs.deleteBatch', { sqsRequests: Math.ceil(receiptHandles.length / 10) });
    return this.inner.deleteBatch(queue, receiptHandles);
  }
  async changeVisibility(queue: string, receiptHandle: string, timeoutSeconds: number): Promise<void> {
    this.meter.add('sqs.changeVisibility', { sqsRequests: 1 });
    return this.inner.changeVisibility(queue, receiptHandle, timeoutSeconds);
  }
  async remove(queue: string): Promise<void> {
    this.meter.add('sqs.remove', { sqsRequests: 2 }); // the queue and its dead-letter queue
    return this.inner.remove(queue);
  }
  async ping(): Promise<void> {
    this.meter.add('sqs.ping', { sqsRequests: 1 });
    return this.inner.ping();
  }
}

export class MeteredScheduler implements Scheduler {
  constructor(
    private readonly inner: Scheduler,
    private readonly meter: Meter,
  ) {}
  upsert(spec: ScheduleSpec): Promise<void> {
    this.meter.add('scheduler.upsert', { schedulerCalls: 1 });
    return this.inner.upsert(spec);
  }
  get(name: string): Promise<StoredSchedule | undefined> {
    this.meter.add('scheduler.get', { schedulerCalls: 1 });
    return this.inner.get(name);
  }
  delete(name: string): Promise<boolean> {
    this.meter.add('scheduler.delete', { schedulerCalls: 1 });
    return this.inner.delete(name);
  }
  list(prefix?: string): Promise<StoredSchedule[]> {
    this.meter.add('scheduler.list', { schedulerCalls: 1 });
    return this.inner.list(prefix);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
}

export class MeteredBlobs implements Blobs {
  /** Signing is local: no request, nothing to charge. */
  readonly presign?: Blobs['presign'];
  constructor(
    private readonly inner: Blobs,
    private readonly meter: Meter,
  ) {
    if (inner.presign) this.presign = inner.presign.bind(inner);
  }
  put(key: string, body: Uint8Array, contentType?: string): Promise<void> {
    this.meter.add('s3.put', { s3WriteRequests: 1, s3BytesIn: body.byteLength });
    return this.inner.put(key, body, contentType);
  }
  async get(key: string): Promise<{ body: Uint8Array; contentType?: string } | undefined> {
    const out = await this.inner.get(key);
    this.meter.add('s3.get', { s3ReadRequests: 1, s3BytesOut: out?.body.byteLength ?? 0 });
    return out;
  }
  delete(key: string): Promise<boolean> {
    this.meter.add('s3.delete', {}); // DELETE requests are free
    return this.inner.delete(key);
  }
  async list(prefix: string): Promise<BlobInfo[]> {
    const out = await this.inner.list(prefix);
    this.meter.add('s3.list', { s3WriteRequests: Math.max(1, Math.ceil(out.length / 1000)) });
    return out;
  }
  ping(): Promise<void> {
    this.meter.add('s3.ping', { s3ReadRequests: 1 });
    return this.inner.ping();
  }
}

export class MeteredSecrets implements Secrets {
  constructor(
    private readonly inner: Secrets,
    private readonly meter: Meter,
  ) {}
  get(name: string): Promise<string | undefined> {
    this.meter.add('ssm.get', { ssmCalls: 1 });
    return this.inner.get(name);
  }
  put(name: string, value: string): Promise<void> {
    this.meter.add('ssm.put', { ssmCalls: 1 });
    return this.inner.put(name, value);
  }
  delete(name: string): Promise<void> {
    this.meter.add('ssm.delete', { ssmCalls: 1 });
    return this.inner.delete(name);
  }
  list(): Promise<string[]> {
    this.meter.add('ssm.list', { ssmCalls: 1 });
    return this.inner.list();
  }
}

const WS_CHUNK = 32 * KB;

export class MeteredConnections implements ConnectionSender {
  constructor(
    readonly inner: ConnectionSender,
    private readonly meter: Meter,
  ) {}
  send(connectionId: string, data: string): Promise<void> {
    this.meter.add('ws.send', { wsMessages: Math.max(1, Math.ceil(Buffer.byteLength(data) / WS_CHUNK)) });
    return this.inner.send(connectionId, data);
  }
  close(connectionId: string, code: number, reason: string): Promise<void> {
    this.meter.add('ws.close', {});
    return this.inner.close(connectionId, code, reason);
  }
}

/** Replaces the context's ports with metered ones, in place (handlers hold the same context object). */
export function meterContext(ctx: AppContext, meter: Meter, options: MeteredStoreOptions = {}): MeteredStore {
  const store = new MeteredStore(ctx.store, meter, options);
  ctx.store = store;
  ctx.queue = new MeteredQueue(ctx.queue, meter);
  ctx.scheduler = new MeteredScheduler(ctx.scheduler, meter);
  ctx.blobs = new MeteredBlobs(ctx.blobs, meter);
  ctx.secrets = new MeteredSecrets(ctx.secrets, meter);
  if (ctx.connections) ctx.connections = new MeteredConnections(ctx.connections, meter);
  return store;
}
