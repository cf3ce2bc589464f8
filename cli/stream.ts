import WebSocket from 'ws';
import { CliError, EXIT } from './errors.js';
import { newLines } from './output.js';

/** A frame of the logs channel (functions/realtime/output.ts OutputMessage, messages.ts LogMessage). */
interface Frame {
  type?: string;
  lines?: unknown;
  dropped?: number;
  tail?: boolean;
  level?: string;
  message?: string;
}

export interface StreamTarget {
  /** `ws(s)://…` of the WebSocket API; the single-URL form (`?channel=logs&node_id=`) both runtimes accept. */
  wsUrl: string;
  apiKey?: string;
}

export interface StreamHooks {
  /** One output line, already deduplicated. */
  line(text: string): void;
  /** Connection news for people (stderr). */
  note(text: string): void;
  /** Asked after a refused or dropped connection: is the source still there? false ends the stream. */
  alive(): Promise<boolean>;
}

/** Lines remembered per stream: more than the tail a reconnect answers (50), so a tail is always matched. */
const REMEMBER = 1000;
const MAX_BACKOFF_MS = 10_000;
/** A reconnect's live frames wait at most this long for its tail before they are shown anyway. */
const TAIL_WAIT_MS = 15_000;
/**
 * The node batches live lines (every 500 ms) while the tail is read at once: for this long after a
 * tail, live frames may repeat its last lines and are matched against what was shown.
 */
const TAIL_OVERLAP_MS = 3000;

/**
 * One subscription to the logs channel: a container's output (`container`) or a node's own log
 * lines. Reconnects with backoff after a drop; the tail a reconnect answers is matched against the
 * lines already shown, so each line is shown once. `done` settles when the stream ends (the source
 * is gone, or close()), and rejects on a refusal that a retry cannot fix (401, 400).
 */
export class LogStream {
  private ws: WebSocket | undefined;
  private shown: string[] = [];
  private closed = false;
  /** Some connection got a frame: a later one is a reconnect. */
  private hadFrames = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private resolveDone!: () => void;
  private rejectDone!: (e: Error) => void;
  readonly done = new Promise<void>((resolve, reject) => {
    this.resolveDone = resolve;
    this.rejectDone = reject;
  });
  /** Connections made, the first included. */
  connects = 0;

  constructor(
    private readonly target: StreamTarget,
    private readonly nodeId: string,
    private readonly container: string | undefined,
    private readonly hooks: StreamHooks,
  ) {
    this.open();
  }

  /** Lines printed since the start, at most REMEMBER: for a last read over HTTP. */
  get lastLines(): readonly string[] {
    return this.shown;
  }

  /** Shows the lines of `text` that were not shown yet (a final read of the container's last lines). */
  catchUp(lines: readonly string[]): void {
    this.show(newLines(this.shown, lines));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'done');
    this.resolveDone();
  }

  private url(): string {
    const u = new URL(this.target.wsUrl);
    u.searchParams.set('channel', 'logs');
    u.searchParams.set('node_id', this.nodeId);
    if (this.container) u.searchParams.set('container', this.container);
    return u.toString();
  }

  private show(lines: readonly string[]): void {
    for (const l of lines) this.hooks.line(l);
    this.shown = [...this.shown, ...lines].slice(-REMEMBER);
  }

  private open(): void {
    if (this.closed) return;
    this.connects++;
    const ws = new WebSocket(this.url(), {
      headers: this.target.apiKey ? { authorization: `Bearer ${this.target.apiKey}` } : {},
      handshakeTimeout: 30_000,
    });
    this.ws = ws;
    // Live frames that come before this connection's tail: shown after it, so the order holds.
    let gotTail = !this.container;
    let tailAt = 0;
    let early: string[] = [];
    let tailTimer: ReturnType<typeof setTimeout> | undefined;
    const flushEarly = () => {
      gotTail = true;
      clearTimeout(tailTimer);
      this.show(newLines(this.shown, early));
      early = [];
    };
    let opened = false;
    let framed = false;
    ws.on('open', () => {
      opened = true;
      if (!gotTail) tailTimer = setTimeout(flushEarly, TAIL_WAIT_MS);
    });
    ws.on('message', (data) => {
      if (!framed) {
        // A refusal also completes the handshake (to carry its close code): the first frame is the proof.
        framed = true;
        if (this.hadFrames) this.hooks.note('log stream reconnected');
        this.hadFrames = true;
        this.attempt = 0;
      }
      let f: Frame;
      try {
        f = JSON.parse(String(data)) as Frame;
      } catch {
        return;
      }
      if (f.type === 'log' && typeof f.message === 'string') {
        this.show([`[${f.level ?? 'info'}] ${f.message}`]);
        return;
      }
      if (f.type !== 'output') return;
      const lines = Array.isArray(f.lines) ? f.lines.map(String) : [];
      if (f.dropped) this.hooks.note(`… ${f.dropped} line(s) left out by the node's rate limit`);
      if (f.tail) {
        // The container's last lines: after a reconnect most were shown already.
        this.show(newLines(this.shown, lines));
        tailAt = Date.now();
        if (!gotTail) flushEarly();
      } else if (!gotTail) early.push(...lines);
      else this.show(Date.now() - tailAt < TAIL_OVERLAP_MS ? newLines(this.shown, lines) : lines);
    });
    let lastError: string | undefined;
    ws.on('error', (e: NodeJS.ErrnoException) => (lastError = e.code ?? e.message));
    ws.on('close', (code, reasonBuf) => {
      clearTimeout(tailTimer);
      if (early.length) flushEarly();
      if (this.closed) return;
      const reason = reasonBuf.toString();
      if (code === 4401) return this.fail(new CliError(`log stream refused: ${reason}`, EXIT.auth));
      if (code === 4400) return this.fail(new CliError(`log stream refused: ${reason}`, EXIT.usage));
      if (!opened && this.connects === 1 && lastError) {
        return this.fail(
          new CliError(
            `cannot open the log stream at ${this.target.wsUrl} (${lastError}).\n` +
              'Set FLEET_WS_URL (the stack’s WebSocketUrl output) or --ws-url',
            EXIT.unreachable,
          ),
        );
      }
      // A failed check (the API briefly unreachable) is no reason to stop: tried again after the wait.
      void this.hooks
        .alive()
        .catch(() => true)
        .then((alive) => {
          if (this.closed) return;
          if (!alive) return this.close();
          const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt++);
          if (code === 4404) {
            if (this.attempt === 1) this.hooks.note(`waiting for the node to report it (${reason})`);
          } else this.hooks.note(`log stream dropped (${code}${reason ? ` ${reason}` : ''}); reconnecting`);
          this.timer = setTimeout(() => this.open(), wait);
        });
    });
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.rejectDone(error);
  }
}

/** The WebSocket API's URL: the flag or FLEET_WS_URL, else what the console is told, else the API's own origin. */
export async function resolveWsUrl(apiUrl: string, given: string | undefined): Promise<string> {
  if (given) return given;
  try {
    const res = await fetch(`${apiUrl}/config.json`, { signal: AbortSignal.timeout(10_000) });
    if (res.ok) {
      const c = (await res.json()) as { wsUrl?: unknown };
      if (typeof c.wsUrl === 'string' && /^wss?:\/\//.test(c.wsUrl)) return c.wsUrl;
    }
  } catch {
    // Not served there: the API's origin.
  }
  const u = new URL(apiUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/ws`;
  return u.toString();
}
