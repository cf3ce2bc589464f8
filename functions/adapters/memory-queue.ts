import { randomUUID } from 'node:crypto';
import {
  dlqName,
  type Queue,
  type QueueDefinition,
  type ReceiveOptions,
  type ReceivedMessage,
} from '../ports/queue.js';

interface Entry {
  messageId: string;
  body: string;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  receiptHandle?: string;
}

interface MemQueue {
  def: Required<QueueDefinition>;
  entries: Entry[];
  waiters: Set<() => void>;
}

/**
 * In-process queue with SQS semantics (visibility timeout, receive counts, dead-letter queue),
 * for the embedded local runtime. State lives in memory: a restart of the process drops
 * in-flight messages, and the reconcilers re-issue what matters.
 */
export class MemoryQueue implements Queue {
  private readonly queues = new Map<string, MemQueue>();

  constructor(private readonly now: () => number = Date.now) {}

  private q(name: string): MemQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = {
        def: { name, visibilityTimeoutSeconds: 30, maxReceiveCount: 0 },
        entries: [],
        waiters: new Set(),
      };
      this.queues.set(name, q);
    }
    return q;
  }

  async ensure(definition: QueueDefinition): Promise<void> {
    const q = this.q(definition.name);
    q.def = {
      name: definition.name,
      visibilityTimeoutSeconds: definition.visibilityTimeoutSeconds ?? 30,
      maxReceiveCount: definition.maxReceiveCount ?? 0,
    };
    if (q.def.maxReceiveCount > 0) this.q(dlqName(definition.name));
  }

  async send(queue: string, body: string, options: { delaySeconds?: number } = {}): Promise<string> {
    const q = this.q(queue);
    const now = this.now();
    const messageId = randomUUID();
    q.entries.push({
      messageId,
      body,
      sentAt: now,
      visibleAt: now + (options.delaySeconds ?? 0) * 1000,
      receiveCount: 0,
    });
    for (const wake of q.waiters) wake();
    return messageId;
  }

  async sendBatch(queue: string, bodies: string[]): Promise<string[]> {
    return Promise.all(bodies.map((b) => this.send(queue, b)));
  }

  async receive(queue: string, options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const q = this.q(queue);
    const deadline = this.now() + (options.waitSeconds ?? 0) * 1000;
    for (;;) {
      const got = this.take(q, options);
      if (got.length || this.now() >= deadline || options.signal?.aborted) return got;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          q.waiters.delete(wake);
          options.signal?.removeEventListener('abort', wake);
          resolve();
        };
        // Wake on a new message, on abort, or when a delayed/invisible message may have become visible.
        const timer = setTimeout(wake, Math.min(250, Math.max(1, deadline - this.now())));
        q.waiters.add(wake);
        options.signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  private take(q: MemQueue, options: ReceiveOptions): ReceivedMessage[] {
    const now = this.now();
    const max = options.maxMessages ?? 1;
    const visibility = (options.visibilityTimeoutSeconds ?? q.def.visibilityTimeoutSeconds) * 1000;
    const out: ReceivedMessage[] = [];
    for (const entry of [...q.entries]) {
      if (out.length >= max) break;
      if (entry.visibleAt > now) continue;
      if (q.def.maxReceiveCount > 0 && entry.receiveCount >= q.def.maxReceiveCount) {
        q.entries.splice(q.entries.indexOf(entry), 1);
        const dlq = this.q(dlqName(q.def.name));
        dlq.entries.push({ ...entry, visibleAt: now, receiveCount: 0, receiptHandle: undefined });
        continue;
      }
      entry.receiveCount += 1;
      entry.visibleAt = now + visibility;
      entry.receiptHandle = randomUUID();
      out.push({
        messageId: entry.messageId,
        body: entry.body,
        receiptHandle: entry.receiptHandle,
        receiveCount: entry.receiveCount,
        sentAt: entry.sentAt,
      });
    }
    return out;
  }

  async delete(queue: string, receiptHandle: string): Promise<void> {
    const q = this.q(queue);
    const i = q.entries.findIndex((e) => e.receiptHandle === receiptHandle);
    if (i >= 0) q.entries.splice(i, 1);
  }

  async deleteBatch(queue: string, receiptHandles: string[]): Promise<void> {
    for (const h of receiptHandles) await this.delete(queue, h);
  }

  async changeVisibility(queue: string, receiptHandle: string, timeoutSeconds: number): Promise<void> {
    const entry = this.q(queue).entries.find((e) => e.receiptHandle === receiptHandle);
    if (entry) entry.visibleAt = this.now() + timeoutSeconds * 1000;
  }

  async releaseInFlight(queue: string): Promise<number> {
    const now = this.now();
    let released = 0;
    for (const entry of this.queues.get(queue)?.entries ?? []) {
      if (entry.receiptHandle === undefined || entry.visibleAt <= now) continue;
      entry.visibleAt = now;
      entry.receiptHandle = undefined;
      released++;
    }
    if (released) for (const wake of this.q(queue).waiters) wake();
    return released;
  }

  async remove(queue: string): Promise<void> {
    this.queues.delete(queue);
    this.queues.delete(dlqName(queue));
  }

  async ping(): Promise<void> {}

  /** Messages waiting or in flight; for tests and /health. */
  depth(queue: string): number {
    return this.queues.get(queue)?.entries.length ?? 0;
  }
}
