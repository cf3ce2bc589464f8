import {
  commandEnvelope,
  type Command,
  type CommandEnvelope,
  type CommandResult,
} from '../protocol/commands.js';
import { retry } from './backoff.js';
import type { Delivery } from './channel.js';
import {
  commandHandlers,
  type CommandHandlers,
  type HandlerDeps,
  type HandlerHooks,
  type Resumed,
} from './command-handlers.js';
import { DiskLimitUnsupportedError, EngineError, GpuUnsupportedError } from './engine/errors.js';
import { ProcessDriverRefusal } from './engine/process.js';
import { errorFields, type Logger } from './log.js';
import { KeyedMutex } from './mutex.js';

/** Hooks around command execution (Nomad's runner hooks, reduced to what the agent needs). */
export interface ExecutorHooks extends HandlerHooks {
  /** After a result is known (executed now, or the stored one for a duplicate delivery). */
  onResult?(envelope: CommandEnvelope, result: CommandResult, info: { duplicate: boolean; ms: number }): void;
}

export interface ResultReporter {
  reportResult(commandId: string, result: CommandResult): Promise<void>;
}

export interface ExecutorOptions extends HandlerDeps {
  /** This node's id (from registration); envelopes for another node are refused. */
  nodeId: () => string;
  reporter: ResultReporter;
  logger: Logger;
  hooks?: ExecutorHooks;
  mutex?: KeyedMutex;
}

/**
 * Executes command envelopes at most once each: results are journalled before they are reported,
 * a repeated delivery re-reports the stored result, and the delivery is acknowledged only after
 * the control plane accepted the result (so a lost report means a redelivery, not a lost result).
 */
export class CommandExecutor {
  private readonly inFlight = new Map<string, Promise<CommandResult>>();
  private readonly handling = new Set<Promise<void>>();
  private readonly mutex: KeyedMutex;
  private readonly log: Logger;
  private readonly handlers: CommandHandlers;

  constructor(private readonly options: ExecutorOptions) {
    this.mutex = options.mutex ?? new KeyedMutex();
    this.log = options.logger.child({ component: 'executor' });
    this.handlers = commandHandlers(options, this.mutex, this.log);
  }

  get lock(): KeyedMutex {
    return this.mutex;
  }

  get pending(): number {
    return this.handling.size;
  }

  /** Handles a delivery in the background; see {@link handle}. */
  dispatch(delivery: Delivery): Promise<void> {
    const p = this.handle(delivery).catch((error: unknown) =>
      this.log.error('command handling failed', { receiptHandle: delivery.receiptHandle, error }),
    );
    this.handling.add(p);
    void p.finally(() => this.handling.delete(p));
    return p;
  }

  /** Waits for deliveries being handled, at most `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.handling]),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  async handle(delivery: Delivery): Promise<void> {
    let envelope: CommandEnvelope;
    try {
      envelope = commandEnvelope.parse(JSON.parse(delivery.body));
    } catch (error) {
      // Redelivering a message that cannot be read would only fail again: report if possible, drop.
      const commandId = peekCommandId(delivery.body);
      this.log.error('unreadable command envelope; dropping it', { commandId, error: errorFields(error) });
      if (commandId) {
        await this.report(commandId, {
          status: 'failed',
          output: {},
          error: `invalid command envelope: ${shortError(error)}`,
        }).catch(() => undefined);
      }
      await this.ack(delivery);
      return;
    }

    const { commandId } = envelope;
    const log = this.log.child({ commandId, type: envelope.command.type });
    const started = Date.now();
    let duplicate = false;
    let result: CommandResult;
    const stored = this.options.journal.get(commandId);
    if (stored) {
      duplicate = true;
      result = stored.result;
      log.info('duplicate delivery; re-reporting the stored result', { status: result.status });
    } else {
      let running = this.inFlight.get(commandId);
      if (running) {
        duplicate = true;
        log.info('duplicate delivery while executing; waiting for the first');
      } else {
        running = this.executeAndRecord(envelope, log);
        this.inFlight.set(commandId, running);
        void running.finally(() => this.inFlight.delete(commandId)).catch(() => undefined);
      }
      result = await running;
    }
    this.options.hooks?.onResult?.(envelope, result, { duplicate, ms: Date.now() - started });

    try {
      await this.report(commandId, result);
    } catch (error) {
      log.error('result not reported; leaving the delivery to come back', { error });
      return;
    }
    await this.options.journal
      .markReported(commandId)
      .catch((error: unknown) => log.warn('journal write failed', { error }));
    await this.ack(delivery);
  }

  private async executeAndRecord(envelope: CommandEnvelope, log: Logger): Promise<CommandResult> {
    const { journal } = this.options;
    const begun = journal.begun(envelope.commandId);
    let resumed: Resumed | undefined;
    if (begun) {
      // Not executed again: each handler finishes what the engine shows was left undone.
      resumed = { beganAt: Date.parse(begun.startedAt) };
      log.warn('resuming a command begun before this agent restarted', { beganAt: begun.startedAt });
    } else {
      await journal
        .begin(envelope.commandId, envelope.command.type)
        .catch((error: unknown) =>
          log.error('journal write failed; a crash now would run it again', { error }),
        );
      // Logged once it is on disk: a process killed before this line never touched the engine.
      log.info('executing command');
    }
    const result = await this.execute(envelope, resumed);
    log[result.status === 'succeeded' ? 'info' : 'warn']('command done', {
      status: result.status,
      ...(result.error ? { error: result.error } : {}),
    });
    try {
      await this.options.journal.record(envelope.commandId, envelope.command.type, result);
    } catch (error) {
      // Still report: the result is true; only a later duplicate would run it again.
      log.error('journal write failed; a redelivery would execute again', { error });
    }
    return result;
  }

  /** Runs one command; never throws: failures become a `failed` result with the reason. */
  async execute(envelope: CommandEnvelope, resumed?: Resumed): Promise<CommandResult> {
    if (envelope.nodeId !== this.options.nodeId()) {
      return {
        status: 'failed',
        output: {},
        error: `command is for node ${envelope.nodeId}, this is ${this.options.nodeId()}`,
      };
    }
    try {
      const output = await this.run(envelope.command, envelope.commandId, resumed);
      return { status: 'succeeded', output };
    } catch (error) {
      return {
        status: 'failed',
        output: { errorType: error instanceof Error ? error.name : 'Error' },
        error: await this.describeError(error),
      };
    }
  }

  /** What the engine said names the engine and its version: the same call fails differently on each. */
  private async describeError(error: unknown): Promise<string> {
    const message = shortError(error);
    const fromEngine =
      error instanceof EngineError ||
      error instanceof DiskLimitUnsupportedError ||
      error instanceof ProcessDriverRefusal ||
      error instanceof GpuUnsupportedError;
    if (!fromEngine) return message;
    const caps = await this.options.engine.capabilities().catch(() => null);
    return caps ? `${engineTitle(caps)}: ${message}` : message;
  }

  private run(command: Command, commandId: string, resumed?: Resumed): Promise<Record<string, unknown>> {
    const handle = this.handlers[command.type] as (
      c: Command,
      id: string,
      resumed?: Resumed,
    ) => Promise<Record<string, unknown>>;
    return handle(command, commandId, resumed);
  }

  private report(commandId: string, result: CommandResult): Promise<void> {
    return this.options.reporter.reportResult(commandId, result);
  }

  private async ack(delivery: Delivery): Promise<void> {
    try {
      await retry(() => delivery.ack(), { maxAttempts: 3, baseMs: 500, maxMs: 5_000 });
    } catch (error) {
      // The message comes back; the journal makes that harmless.
      this.log.warn('acknowledging the delivery failed; it will be redelivered', {
        receiptHandle: delivery.receiptHandle,
        error,
      });
    }
  }
}
/** "Docker Engine 20.10.24" or "Podman 4.3.1". */
export function engineTitle(caps: { name: string; version: string }): string {
  if (caps.name === 'process') return 'process driver';
  return `${caps.name === 'podman' ? 'Podman' : 'Docker Engine'} ${caps.version}`;
}

function shortError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 2000 ? `${message.slice(0, 2000)}…` : message;
}

function peekCommandId(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { commandId?: unknown } | null)?.commandId;
    return typeof id === 'string' && id ? id : undefined;
  } catch {
    return undefined;
  }
}
