import type { EngineDriver } from './engine/types.js';
import type { EventSink } from './events.js';
import type { Logger } from './log.js';

export interface OutputFollowerOptions {
  engine: EngineDriver;
  events: EventSink;
  logger: Logger;
  /** How often buffered lines go out as one `container.output` event. */
  flushMs?: number;
  /** Lines kept per flush; more are counted as dropped (the rate limit: 100 lines a second by default). */
  maxLinesPerFlush?: number;
  now?: () => number;
}

/** A line longer than this is cut (the event schema's limit is 4096). */
export const MAX_LINE_CHARS = 2000;

interface Follow {
  until: number;
  abort: AbortController;
  timer: ReturnType<typeof setInterval>;
  buffer: string[];
  dropped: number;
}

/**
 * container.follow: streams new output lines of a container as `container.output` events while its
 * lease lasts. Lines are batched every `flushMs` and capped per batch, so a chatty container costs
 * the control plane a bounded number of events; what is cut is reported as a count.
 */
export class OutputFollower {
  private readonly follows = new Map<string, Follow>();
  private readonly flushMs: number;
  private readonly maxLines: number;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly options: OutputFollowerOptions) {
    this.flushMs = options.flushMs ?? 500;
    this.maxLines = options.maxLinesPerFlush ?? 50;
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'follow' });
  }

  get following(): string[] {
    return [...this.follows.keys()];
  }

  /** Starts following, or moves the lease of a follow already running. */
  follow(instanceId: string, containerId: string, seconds: number): { started: boolean; until: number } {
    const until = this.now() + seconds * 1000;
    const current = this.follows.get(instanceId);
    if (current) {
      current.until = Math.max(current.until, until);
      return { started: false, until: current.until };
    }
    const { engine } = this.options;
    if (!engine.followLogs) throw new Error('this engine driver cannot follow container output');
    const f: Follow = {
      until,
      abort: new AbortController(),
      timer: setInterval(() => this.flush(instanceId), this.flushMs),
      buffer: [],
      dropped: 0,
    };
    f.timer.unref?.();
    this.follows.set(instanceId, f);
    const onLine = (line: string) => {
      if (f.buffer.length >= this.maxLines) f.dropped++;
      else f.buffer.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    };
    void engine
      .followLogs(containerId, onLine, f.abort.signal)
      .catch((error: unknown) => this.log.warn('following output failed', { instanceId, error }))
      .finally(() => this.end(instanceId, f));
    return { started: true, until };
  }

  stopAll(): void {
    for (const [id, f] of this.follows) {
      f.abort.abort();
      this.end(id, f);
    }
  }

  private flush(instanceId: string): void {
    const f = this.follows.get(instanceId);
    if (!f) return;
    if (f.buffer.length || f.dropped) {
      this.options.events.send({
        type: 'container.output',
        instanceId,
        lines: f.buffer.splice(0),
        dropped: f.dropped,
        at: new Date(this.now()).toISOString(),
      });
      f.dropped = 0;
    }
    if (this.now() >= f.until) f.abort.abort();
  }

  /** The stream ended (container gone, lease over, shutdown): what is buffered still goes out. */
  private end(instanceId: string, f: Follow): void {
    if (this.follows.get(instanceId) !== f) return;
    this.flush(instanceId);
    clearInterval(f.timer);
    this.follows.delete(instanceId);
  }
}
