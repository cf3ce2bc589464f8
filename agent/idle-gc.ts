import type { PerformanceObserver as GcObserver } from 'node:perf_hooks';

/**
 * A full garbage collection once the agent falls idle: after start-up (registration, module set-up)
 * and after a burst of commands, V8 otherwise keeps the dead objects until its memory reducer gets
 * to them, tens of seconds later, and the idle agent's resident memory peaks meanwhile. Needs
 * `--expose-gc` (agent/node-flags.ts); without it this does nothing.
 */
export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;
  private scavenges: GcObserver | undefined;
  constructor(
    private readonly busy: () => boolean,
    private readonly delayMs = 3_000,
    private readonly collect: (() => void) | undefined = exposedGc(),
  ) {}

  /** Something finished: collect once nothing has run for `delayMs` (or at once). */
  kick(delayMs = this.delayMs): void {
    if (!this.collect) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.busy()) this.kick();
      else this.collect!();
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Also collects once quiet after each young-generation collection: a scavenge leaves the 1 MB
   * semi-space it emptied in V8's page pool, resident, and only a memory-reducing full collection
   * hands it back (`pooled: 1 MB` in --trace-gc; the idle agent scavenges about twice a minute).
   */
  watchScavenges(): void {
    if (!this.collect || this.scavenges) return;
    this.scavenges = new PerformanceObserver((list) => {
      // A collection already due (start-up's, a burst's) is not put off.
      if (this.timer) return;
      if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === GC_MINOR))
        this.kick();
    });
    this.scavenges.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.scavenges?.disconnect();
    this.scavenges = undefined;
  }
}

/** perf_hooks' constants.NODE_PERFORMANCE_GC_MINOR, without loading perf_hooks for one number. */
const GC_MINOR = 1;

type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * V8's `gc` as --expose-gc gives it, asked for its last-resort flavour: full collections until
 * nothing more is freed, compacting, and the freed pages handed back (what the memory reducer does).
 */
function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: Gc }).gc;
  return gc && (() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }));
}
