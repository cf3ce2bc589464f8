import type { ContainerSpec } from '../protocol/commands.js';
import { Backoff, sleep } from './backoff.js';
import type { EngineDriver, EngineEvent, ManagedContainer } from './engine/types.js';
import type { EventSink } from './events.js';
import type { CommandJournal } from './journal.js';
import { inNewOperation, type Logger } from './log.js';

export interface ExitWatcherOptions {
  engine: EngineDriver;
  journal: CommandJournal;
  events: EventSink;
  logger: Logger;
  /** Safety-net scan interval; the engine's event stream normally reports first. */
  pollMs?: number;
  logLines?: number;
  /** Kinds whose exits the control plane acts on; model servers are the task runner's business. */
  kinds?: ReadonlyArray<ContainerSpec['kind']>;
  /** Runs before a run container's exit is reported (its last checkpoint upload), so a retry elsewhere finds it. */
  beforeRunExit?: (c: ManagedContainer) => Promise<void>;
  /** How long an exit announced through expectExit stays expected. */
  expectTtlMs?: number;
  now?: () => Date;
}

const EXITED = new Set(['exited', 'dead']);

/** How an exit is keyed in the journal: one container can exit many times (restarts). */
export const exitKey = (c: Pick<ManagedContainer, 'id' | 'finishedAt'>): string =>
  `${c.id}@${c.finishedAt ?? 'unknown'}`;

/**
 * Reports managed containers that exited (container.exited with exit code and last log lines).
 * Two sources: the engine's event stream (die) for promptness, and a periodic scan of containers
 * by label, which also finds exits that happened while the agent was down. Each exit is keyed
 * `containerId@finishedAt` in the journal, so it is reported once across restarts, and the view
 * is rebuilt from engine labels alone.
 */
export class ExitWatcher {
  private readonly expected = new Map<string, number>();
  private readonly busy = new Set<string>();
  /** Sent, not yet accepted by the control plane; journalled only on delivery, so a crash re-sends. */
  private readonly pending = new Set<string>();
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly options: ExitWatcherOptions) {
    this.log = options.logger.child({ component: 'watcher' });
    this.now = options.now ?? (() => new Date());
  }

  /** The agent is stopping or replacing this container itself: its exit is not news. */
  expectExit(containerId: string): void {
    this.expected.set(containerId, Date.now() + (this.options.expectTtlMs ?? 10 * 60_000));
  }

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.pollLoop(signal), this.eventLoop(signal)]);
  }

  /** One scan of all managed containers; returns how many exits it reported. */
  async reconcile(): Promise<number> {
    const containers = await this.options.engine.list();
    let reported = 0;
    for (const c of containers) {
      if (!EXITED.has(c.state)) continue;
      if (await this.consider(c, null)) reported++;
    }
    for (const [id, until] of this.expected) if (until < Date.now()) this.expected.delete(id);
    return reported;
  }

  private async onEvent(event: EngineEvent): Promise<void> {
    if (event.action !== 'die') return;
    try {
      const c = await this.options.engine.inspect(event.containerId);
      // No finish time yet: the engine has not settled the state; the next scan will see it.
      if (c.finishedAt === null) return;
      // A restart policy may have started it again already; the exit still happened.
      await this.consider(c, event.exitCode);
    } catch (error) {
      this.log.debug('could not inspect a container that died', { containerId: event.containerId, error });
    }
  }

  /** Reports one exit unless already reported, expected, or of a kind nobody acts on. */
  private async consider(c: ManagedContainer, eventExitCode: number | null): Promise<boolean> {
    const key = exitKey(c);
    if (this.options.journal.hasExit(key) || this.busy.has(key) || this.pending.has(key)) return false;
    this.busy.add(key);
    try {
      const expected = (this.expected.get(c.id) ?? 0) >= Date.now();
      if (c.kind === 'run' && this.options.beforeRunExit) {
        await this.options
          .beforeRunExit(c)
          .catch((error: unknown) =>
            this.log.warn('work before reporting a run exit failed', { containerId: c.id, error }),
          );
      }
      const kinds = this.options.kinds ?? ['run', 'service'];
      if (expected || !kinds.includes(c.kind)) {
        await this.options.journal.recordExit(key);
        return false;
      }
      const logTail = await this.options.engine
        .logs(c.id, this.options.logLines ?? 50)
        .catch((error: unknown) => {
          this.log.warn('could not read logs of an exited container', { containerId: c.id, error });
          return '';
        });
      this.pending.add(key);
      this.options.events.send(
        {
          type: 'container.exited',
          instanceId: c.instanceId,
          kind: c.kind,
          exitCode: eventExitCode ?? c.exitCode,
          logTail,
          at: c.finishedAt ?? this.now().toISOString(),
        },
        async () => {
          await this.options.journal.recordExit(key);
          this.pending.delete(key);
        },
      );
      this.log.info('container exited', {
        containerId: c.id,
        instanceId: c.instanceId,
        kind: c.kind,
        exitCode: eventExitCode ?? c.exitCode,
      });
      return true;
    } finally {
      this.busy.delete(key);
    }
  }

  private async pollLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await inNewOperation(async () => {
        try {
          await this.reconcile();
        } catch (error) {
          this.log.warn('scanning containers failed', { error });
        }
      });
      await sleep(this.options.pollMs ?? 5_000, signal);
    }
  }

  private async eventLoop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ baseMs: 1_000, maxMs: 30_000 });
    while (!signal.aborted) {
      const opened = Date.now();
      try {
        await this.options.engine.watchEvents(
          (event) => void inNewOperation(() => this.onEvent(event)),
          signal,
        );
      } catch (error) {
        if (signal.aborted) break;
        this.log.warn('engine event stream failed', { error });
      }
      if (signal.aborted) break;
      // A stream that stayed up a while was healthy: reconnect promptly.
      if (Date.now() - opened > 60_000) backoff.reset();
      await sleep(backoff.next(), signal);
      // Exits during the gap are found by the next scan; run it now.
      await this.reconcile().catch(() => undefined);
    }
  }
}
