/**
 * A full garbage collection once the agent falls idle: after start-up (registration, module set-up)
 * and after a burst of commands, V8 otherwise keeps the dead objects until its memory reducer gets
 * to them, tens of seconds later, and the idle agent's resident memory peaks meanwhile. Needs
 * `--expose-gc` (agent/node-flags.ts); without it this does nothing.
 */
export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;
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

  stop(): void {
    clearTimeout(this.timer);
  }
}

type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * V8's `gc` as --expose-gc gives it, asked for its last-resort flavour: full collections until
 * nothing more is freed, compacting, and the freed pages handed back (what the memory reducer does).
 */
function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: Gc }).gc;
  return gc && (() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }));
}
