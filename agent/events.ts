import type { AgentEvent } from '../protocol/messages.js';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import type { Logger } from './log.js';

export interface EventSink {
  /**
   * Queues an event; delivery is asynchronous, in order, retried through outages.
   * `onDelivered` runs once the control plane accepted it (the watcher journals the exit then).
   */
  send(event: AgentEvent, onDelivered?: () => Promise<void> | void): void;
}

interface Queued {
  event: AgentEvent;
  onDelivered?: () => Promise<void> | void;
}

export interface EventReporterOptions {
  post: (events: AgentEvent[], signal: AbortSignal) => Promise<void>;
  logger: Logger;
  /** Beyond this many queued, the oldest task.progress events are dropped first, then the oldest of any. */
  maxQueued?: number;
  backoff?: BackoffOptions;
}

/**
 * Sends agent events (container.exited, task.progress, task.finished) to POST /agent/events in
 * batches. A control-plane outage only delays them: the queue is kept and retried with backoff.
 */
export class EventReporter implements EventSink {
  private readonly queue: Queued[] = [];
  private wake: (() => void) | null = null;
  private readonly maxQueued: number;
  private readonly log: Logger;

  constructor(private readonly options: EventReporterOptions) {
    this.maxQueued = options.maxQueued ?? 1000;
    this.log = options.logger.child({ component: 'events' });
  }

  send(event: AgentEvent, onDelivered?: () => Promise<void> | void): void {
    this.queue.push(onDelivered ? { event, onDelivered } : { event });
    if (this.queue.length > this.maxQueued) {
      const progress = this.queue.findIndex(
        (q) => q.event.type === 'task.progress' || q.event.type === 'container.output',
      );
      const dropped = this.queue.splice(progress >= 0 ? progress : 0, 1);
      this.log.warn('event queue full; dropped one', { type: dropped[0]?.event.type });
    }
    this.wake?.();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Delivers until `signal` aborts; then makes one last short attempt to flush. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.options.backoff);
    while (!signal.aborted) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            signal.removeEventListener('abort', done);
            this.wake = null;
            resolve();
          };
          this.wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      const batch = this.queue.slice(0, 100);
      try {
        await this.options.post(
          batch.map((q) => q.event),
          signal,
        );
        this.queue.splice(0, batch.length);
        await this.delivered(batch);
        backoff.reset();
      } catch (error) {
        if (signal.aborted) break;
        const delayMs = backoff.next();
        this.log.warn('posting events failed; will retry', { count: batch.length, delayMs, error });
        await sleep(delayMs, signal);
      }
    }
    await this.flush(5_000);
  }

  private async delivered(batch: Queued[]): Promise<void> {
    for (const q of batch) {
      try {
        await q.onDelivered?.();
      } catch (error) {
        this.log.warn('after-delivery hook failed', { type: q.event.type, error });
      }
    }
  }

  /** One bounded attempt to deliver what is queued (shutdown). */
  async flush(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0) return;
    const batch = this.queue.slice(0, 100);
    try {
      await this.options.post(
        batch.map((q) => q.event),
        AbortSignal.timeout(timeoutMs),
      );
      this.queue.splice(0, batch.length);
      await this.delivered(batch);
    } catch (error) {
      this.log.warn('events not delivered before shutdown', { count: this.queue.length, error });
    }
  }
}
