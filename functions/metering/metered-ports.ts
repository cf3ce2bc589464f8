/**
 * Decorators that meter every port in AWS billing units (see meter.ts). They wrap any adapter, so
 * a suite, a bench or the local runtime can count what the code would cost on AWS:
 *
 * - DynamoDB (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
 *   a write costs 1 unit per KB of the item, rounded up, the larger of its before and after sizes; a
 *   failed conditional write still costs the size of the stored item (1 unit when there is none); each
 *   GSI the item sits on costs one more write of its projected copy, a moved index key two (delete and
 *   put). A read costs 1 unit per 4 KB (GetItem with ConsistentRead, as DynamoStore does) or half of
 *   it (queries, always eventually consistent here), a query summing the sizes of the items it returns.
 * - SQS: 1 request per 64 KB chunk of payload; S3 by request class and bytes; SSM per call;
 *   WebSocket messages per 32 KB chunk; the HTTP entry per request, invocation, GB-second and log byte.
 */
import type { Context } from 'aws-lambda';
import { TABLE_KEYS } from '../core/table.js';
import type { EventHandler } from '../core/events.js';
import type { HttpEvent, HttpResult } from '../core/http.js';
import type { AppContext } from '../core/context.js';
import type { BlobInfo, Blobs } from '../ports/blobs.js';
import type { ConnectionSender } from '../ports/connections.js';
import type { Queue, QueueDefinition, ReceiveOptions, ReceivedMessage } from '../ports/queue.js';
import type { ScheduleSpec, Scheduler, StoredSchedule } from '../ports/scheduler.js';
import type { Secrets } from '../ports/secrets.js';
import {
  ConditionFailedError,
  type Condition,
  type Page,
  type QueryOptions,
  type Store,
  type StoreItem,
  type UpdateSpec,
} from '../ports/store.js';
import { itemSize } from '../core/item-size.js';
import type { Meter } from './meter.js';

const KB = 1024;
const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / KB));
const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / (4 * KB))) * (consistent ? 1 : 0.5);

export type Projection = { type: 'ALL' } | { type: 'KEYS_ONLY' } | { type: 'INCLUDE'; attributes: string[] };
interface IndexShape {
  name: string;
  partitionKey: string;
  sortKey: string;
  projection: Projection;
}

/** The table's indexes with their projections, as the stack and ensureTable create them. */
export function tableIndexes(): IndexShape[] {
  return TABLE_KEYS.indexes.map((i) => ({
    name: i.name,
    partitionKey: i.partitionKey,
    sortKey: i.sortKey,
    projection: (i as { projection?: Projection }).projection ?? { type: 'ALL' },
  }));
}

/** What an item costs where the meter last saw it: its size and its index keys. */
interface Known {
  size: number;
  /** Per index: its key and the size of the projected copy, when the item sits on it. */
  indexes: Record<string, { key: string; size: number; copy: string } | undefined>;
}

export interface MeteredStoreOptions {
  indexes?: IndexShape[];
  /** GetItem reads strongly consistent (DynamoStore does). */
  consistentGet?: boolean;
}

export class MeteredStore implements Store {
  private readonly known = new Map<string, Known>();
  private readonly indexes: IndexShape[];
  private readonly consistentGet: boolean;

  constructor(
    private readonly inner: Store,
    private readonly meter: Meter,
    options: MeteredStoreOptions = {},
  ) {
    this.indexes = options.indexes ?? tableIndexes();
    this.consistentGet = options.consistentGet ?? true;
  }

  /** The index's copy of an item: its size, and its content to tell whether a write changed it. */
  private projected(item: StoreItem, index: IndexShape): { size: number; copy: string } {
    const p = index.projection;
    const keep = new Set([TABLE_KEYS.partitionKey, TABLE_KEYS.sortKey, index.partitionKey, index.sortKey]);
    if (p.type === 'INCLUDE') for (const a of p.attributes) keep.add(a);
    const copy =
      p.type === 'ALL' ? item : Object.fromEntries(Object.entries(item).filter(([k]) => keep.has(k)));
    return { size: itemSize(copy), copy: JSON.stringify(copy) };
  }

  private describe(item: StoreItem): Known {
    const indexes: Known['indexes'] = {};
    for (const index of this.indexes) {
      const pk = item[index.partitionKey];
      const sk = item[index.sortKey];
      indexes[index.name] =
        typeof pk === 'string' && typeof sk === 'string'
          ? { key: `${pk}\u0000${sk}`, ...this.projected(item, index) }
          : undefined;
    }
    return { size: itemSize(item), indexes };
  }

  private remember(pk: string, sk: string, item: StoreItem | undefined): Known | undefined {
    const id = `${pk}\u0000${sk}`;
    if (!item) {
      this.known.delete(id);
      return undefined;
    }
    const k = this.describe(item);
    this.known.set(id, k);
    return k;
  }

  /** Units of a write that went through: the table, then each index it leaves, enters or changes. */
  private chargeWrite(kind: string, before: Known | undefined, after: Known | undefined): void {
    const table = writeUnits(Math.max(before?.size ?? 0, after?.size ?? 0));
    let index = 0;
    for (const { name } of this.indexes) {
      const b = before?.indexes[name];
      const a = after?.indexes[name];
      // Same key: one write of the copy, none when the write left every projected attribute as it was.
      if (b && a && b.key === a.key) index += b.copy === a.copy ? 0 : writeUnits(a.size);
      else {
        if (b) index += writeUnits(b.size);
        if (a) index += writeUnits(a.size);
      }
    }
    this.meter.add(`dynamo.${kind}`, { writeUnits: table + index, indexWriteUnits: index, dynamoCalls: 1 });
  }

  private chargeFailedWrite(kind: string, error: unknown): void {
    if (error instanceof ConditionFailedError) {
      const stored = error.current ? itemSize(error.current) : 0;
      this.meter.add(`dynamo.${kind}.failed`, { writeUnits: writeUnits(stored), dynamoCalls: 1 });
    }
  }

  async get<T extends StoreItem>(pk: string, sk: string): Promise<T | undefined> {
    const item = await this.inner.get<T>(pk, sk);
    const k = this.remember(pk, sk, item);
    this.meter.add('dynamo.get', { readUnits: readUnits(k?.size ?? 0, this.consistentGet), dynamoCalls: 1 });
    return item;
  }

  async put<T extends StoreItem>(item: T, condition?: Condition): Promise<void> {
    const id = `${item.pk}\u0000${item.sk}`;
    const before = this.known.get(id);
    try {
      await this.inner.put(item, condition);
    } catch (error) {
      this.chargeFailedWrite('put', error);
      throw error;
    }
    const after = this.remember(item.pk, item.sk, { ...item, version: item.version ?? 1 });
    this.chargeWrite('put', before, after);
  }

  async update<T extends StoreItem>(
    pk: string,
    sk: string,
    spec: UpdateSpec,
    condition?: Condition,
  ): Promise<T> {
    const before = this.known.get(`${pk}\u0000${sk}`);
    let out: T;
    try {
      out = await this.inner.update<T>(pk, sk, spec, condition);
    } catch (error) {
      this.chargeFailedWrite('update', error);
      throw error;
    }
    const after = this.remember(pk, sk, out);
    this.chargeWrite('update', before, after);
    return out;
  }

  async delete<T extends StoreItem>(pk: string, sk: string, condition?: Condition): Promise<T | undefined> {
    let old: T | undefined;
    try {
      old = await this.inner.delete<T>(pk, sk, condition);
    } catch (error) {
      this.chargeFailedWrite('delete', error);
      throw error;
    }
    const before = old ? this.describe(old) : undefined;
    this.remember(pk, sk, undefined);
    this.chargeWrite('delete', before, undefined);
    return old;
  }

  async query<T extends StoreItem>(pk: string, options: QueryOptions = {}): Promise<Page<T>> {
    const page = await this.inner.query<T>(pk, options);
    const index = options.index ? this.indexes.find((i) => i.name === options.index) : undefined;
    let bytes = 0;
    for (const item of page.items) {
      const k = this.remember(item.pk, item.sk, item);
      bytes += index ? (k?.indexes[index.name]?.size ?? itemSize(item)) : itemSize(item);
    }
    this.meter.add(`dynamo.query${index ? `.${index.name}` : ''}`, {
      readUnits: readUnits(bytes, false),
      dynamoCalls: 1,
    });
    return page;
  }

  ping(): Promise<void> {
    return this.inner.ping(); // DescribeTable: a control-plane call, not billed
  }

  /** Sizes of the items the meter last saw whose partition key starts with `prefix`. */
  itemSizes(prefix: string): number[] {
    const out: number[] = [];
    for (const [id, k] of this.known) if (id.startsWith(prefix)) out.push(k.size);
    return out;
  }

  /** Bytes the table and its index copies hold, as the meter saw them, with DynamoDB's 100-byte per-item overhead. */
  storedBytes(): number {
    let total = 0;
    for (const k of this.known.values()) {
      total += k.size + 100;
      for (const i of Object.values(k.indexes)) if (i) total += i.size + 100;
    }
    return total;
  }
}

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

export interface LambdaMetering {
  /** The function's memory (lib/function.ts: 1024 MB unless the stack sets another); for HTTP, per request's function. */
  memoryMb: number | ((event: HttpEvent) => number);
  /** START, END and REPORT lines Lambda itself writes per invocation (text log format). */
  platformLogBytes?: number;
}

function chargeInvocation(
  meter: Meter,
  kind: string,
  startedAt: number,
  lambda: LambdaMetering,
  event?: HttpEvent,
): void {
  const billedMs = Math.max(1, Math.ceil(performance.now() - startedAt));
  const memoryMb =
    typeof lambda.memoryMb === 'number' ? lambda.memoryMb : event ? lambda.memoryMb(event) : 1024;
  meter.add(kind, {
    ...(event ? { httpRequests: 1 } : {}),
    lambdaInvocations: 1,
    lambdaGbSeconds: (memoryMb / 1024) * (billedMs / 1000),
    logBytes: lambda.platformLogBytes ?? 0,
  });
}

/** A route's name for the meter: the path with ids replaced by `{id}`. */
export function operationLabel(method: string, path: string): string {
  const parts = path
    .split('/')
    .map((p) => (/\d/.test(p) && (p.length >= 12 || /^[0-9a-f-]{8,}$/i.test(p)) ? '{id}' : p));
  return `${method} ${parts.join('/')}`;
}

type HttpHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** The HTTP entry: one API request, one Lambda invocation, its duration and its logs per call. */
export function meterHttpHandler(handler: HttpHandler, meter: Meter, lambda: LambdaMetering): HttpHandler {
  return (event, context) =>
    meter.within(operationLabel(event.requestContext.http.method, event.rawPath), async () => {
      const startedAt = performance.now();
      try {
        return await handler(event, context);
      } finally {
        chargeInvocation(meter, 'http', startedAt, lambda, event);
      }
    });
}

/** The events function: each event handled counts as one invocation (SQS batches of up to 10 would share one). */
export function meterEventHandlers(
  handlers: Record<string, EventHandler>,
  meter: Meter,
  lambda: LambdaMetering & { memoryMb: number },
): Record<string, EventHandler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([type, handler]) => [
      type,
      (event, ctx) =>
        meter.within(`event ${type}`, async () => {
          const startedAt = performance.now();
          try {
            await handler(event, ctx);
          } finally {
            chargeInvocation(meter, 'event', startedAt, lambda);
          }
        }),
    ]),
  );
}
