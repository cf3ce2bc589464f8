import {
  commandEnvelope,
  HOST_EXEC,
  type Command,
  type CommandEnvelope,
  type CommandOf,
  type CommandOutput,
  type CommandResult,
  type CommandType,
} from '../protocol/commands.js';
import { EXEC_DISABLED } from '../protocol/agent-api.js';
import { LABELS } from '../protocol/messages.js';
import { retry } from './backoff.js';
import type { Delivery } from './channel.js';
import type { OutputFollower } from './follow.js';
import { DiskLimitUnsupportedError, EngineError, GpuUnsupportedError } from './engine/errors.js';
import { ensureStarted } from './engine/startup.js';
import { ProcessDriverRefusal } from './engine/process.js';
import type { EngineDriver, ManagedContainer } from './engine/types.js';
import type { HostInstallDeps } from './host-install.js';
import type { CommandJournal } from './journal.js';
import { errorFields, type Logger } from './log.js';
import { auditDisk, pruneEngine } from './maintenance.js';
import { KeyedMutex } from './mutex.js';
import { checkSpec, DEFAULT_POLICY, type NodePolicy } from './policy.js';
import type { ScanOptions } from './network-scan.js';
import type { TaskRunner } from './tasks.js';
import type { CheckpointSync } from './checkpoints.js';

/** Set when a process of this agent began the command and died before its result was recorded. */
interface Resumed {
  beganAt: number;
}

type CommandHandlers = {
  [T in CommandType]: (
    command: CommandOf<T>,
    commandId: string,
    resumed?: Resumed,
  ) => Promise<CommandOutput<T>>;
};

/** Hooks around command execution (Nomad's runner hooks, reduced to what the agent needs). */
export interface ExecutorHooks {
  /** About to stop or replace this container on purpose: the watcher must not report it as a crash. */
  expectExit?(containerId: string): void;
  /** After a result is known (executed now, or the stored one for a duplicate delivery). */
  onResult?(envelope: CommandEnvelope, result: CommandResult, info: { duplicate: boolean; ms: number }): void;
}

export interface ResultReporter {
  reportResult(commandId: string, result: CommandResult): Promise<void>;
}

export interface ExecutorOptions {
  /** This node's id (from registration); envelopes for another node are refused. */
  nodeId: () => string;
  engine: EngineDriver;
  journal: CommandJournal;
  tasks: TaskRunner;
  reporter: ResultReporter;
  logger: Logger;
  hooks?: ExecutorHooks;
  mutex?: KeyedMutex;
  /** image.build builds only folders under this root (--build-root); unset: builds are refused. */
  buildRoot?: string;
  /** network.scan's probe and lookup settings (tests shorten them, or point at their own ARP table). */
  networkScan?: ScanOptions;
  /** host.exec runs only when the agent was started with --allow-exec (FLEET_ALLOW_EXEC=true). */
  allowExec?: boolean;
  /** The agent's state folder, whose filesystem disk.audit reports. */
  stateDir?: string;
  /** host.exec's cap per output stream (tests lower it). */
  maxExecOutputBytes?: number;
  /** host.install's connection to the control plane and what it copies; unset: installs are refused. */
  hostInstall?: Omit<HostInstallDeps, 'logger'>;
  /** container.follow's streams; unset: follows are refused. */
  follower?: OutputFollower;
  /** What this node lets containers do (mounts, privileges); DEFAULT_POLICY when unset. */
  policy?: NodePolicy;
  /** The engine socket this agent drives (DOCKER_HOST), refused as a mount like the usual ones. */
  engineSocket?: string;
  /** Training runs' checkpoint folders: restored before the start, then uploaded while they run. */
  checkpoints?: CheckpointSync;
}

/** host.exec on an agent without --allow-exec; the control plane answers 403 with this message. */
export class ExecDisabledError extends Error {
  override name = EXEC_DISABLED;
  constructor() {
    super(
      'remote command execution is disabled on this node: start its agent with --allow-exec (or FLEET_ALLOW_EXEC=true) to allow it',
    );
  }
}

/** The most log text a container.logs result carries; the end is kept. */
const MAX_LOG_CHARS = 1024 * 1024;

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

  constructor(private readonly options: ExecutorOptions) {
    this.mutex = options.mutex ?? new KeyedMutex();
    this.log = options.logger.child({ component: 'executor' });
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

  /** The agent's half of every command of protocol/commands.ts; the compiler checks none is missing. */
  private readonly handlers: CommandHandlers = {
    'container.start': (command, commandId) =>
      this.mutex.run(command.spec.instanceId, async () => {
        const { checkpoints, engine } = this.options;
        const spec = checkpoints?.place(command.spec) ?? command.spec;
        // Before the engine sees it: the policy is the node owner's, whatever the command says.
        checkSpec(spec, this.options.policy ?? DEFAULT_POLICY, this.options.engineSocket);
        // Restored only before the container exists: a redelivery must not write under a running one.
        if (checkpoints && spec.checkpoint && !(await engine.findByInstance(spec.instanceId))) {
          await checkpoints.restore(spec).catch((error: unknown) => {
            throw new Error(
              `checkpoint restore failed: ${error instanceof Error ? error.message : String(error)}`,
            );
          });
        }
        try {
          const { container, reused } = await ensureStarted(engine, spec, { commandId });
          if (spec.checkpoint) checkpoints?.track(spec);
          return { ...describe(container), reused };
        } catch (error) {
          checkpoints?.forget(spec.instanceId);
          throw error;
        }
      }),

    'container.stop': (command) =>
      this.mutex.run(command.instanceId, async () => {
        const { engine, hooks } = this.options;
        const c = await engine.findByInstance(command.instanceId);
        if (!c) return { found: false as const, instanceId: command.instanceId };
        hooks?.expectExit?.(c.id);
        await engine.stop(c.id, command.timeoutSeconds);
        return { found: true as const, ...describe(await engine.inspect(c.id)) };
      }),

    'container.remove': (command) =>
      this.mutex.run(command.instanceId, async () => {
        const { engine, hooks } = this.options;
        const c = await engine.findByInstance(command.instanceId);
        if (!c) return { found: false, removed: false, instanceId: command.instanceId };
        hooks?.expectExit?.(c.id);
        await engine.remove(c.id, command.force);
        return { found: true, removed: true, containerId: c.id, instanceId: command.instanceId };
      }),

    'container.restart': (command, _commandId, resumed) =>
      this.mutex.run(command.instanceId, async () => {
        const { engine, hooks } = this.options;
        const c = await requireContainer(engine, command.instanceId);
        // Started again since the interrupted attempt began: that attempt got as far as the end.
        if (resumed && c.running && c.startedAt && Date.parse(c.startedAt) >= resumed.beganAt)
          return describe(c);
        hooks?.expectExit?.(c.id);
        if (c.state === 'running') await engine.stop(c.id, command.timeoutSeconds);
        await engine.start(c.id);
        return describe(await engine.inspect(c.id));
      }),

    'container.update': (command, commandId, resumed) =>
      this.mutex.run(command.instanceId, async () => {
        const { engine, hooks } = this.options;
        const c = await requireContainer(engine, command.instanceId);
        // The interrupted attempt recreated it already (the new container carries this command's id).
        if (resumed && c.labels[LABELS.command] === commandId)
          return { ...describe(c), method: 'recreate' as const, previousContainerId: c.id };
        const limits = {
          ...(command.cpuLimit !== undefined ? { cpuLimit: command.cpuLimit } : {}),
          ...(command.memoryLimitMb !== undefined ? { memoryLimitMb: command.memoryLimitMb } : {}),
          ...(command.diskLimitGb !== undefined ? { diskLimitGb: command.diskLimitGb } : {}),
        };
        hooks?.expectExit?.(c.id); // the fallback recreates it
        const outcome = await engine.updateLimits(c.id, limits, { commandId });
        return { ...describe(outcome.container), method: outcome.method, previousContainerId: c.id };
      }),

    'container.logs': async (command) => {
      const { engine } = this.options;
      const c = await requireContainer(engine, command.instanceId);
      const text = await engine.logs(c.id, command.tail);
      const truncated = text.length > MAX_LOG_CHARS;
      return {
        containerId: c.id,
        instanceId: command.instanceId,
        logs: truncated ? text.slice(-MAX_LOG_CHARS) : text,
        truncated,
      };
    },

    'container.follow': async (command) => {
      const { engine, follower } = this.options;
      if (!follower) throw new Error('this agent does not follow container output');
      const c = await requireContainer(engine, command.instanceId);
      const { started, until } = follower.follow(command.instanceId, c.id, command.seconds);
      const logs = command.tail ? await engine.logs(c.id, command.tail) : '';
      return {
        containerId: c.id,
        instanceId: command.instanceId,
        started,
        until: new Date(until).toISOString(),
        logs: logs.slice(-MAX_LOG_CHARS),
      };
    },

    'task.run': (command, commandId) => this.options.tasks.accept(command, commandId),

    'task.cancel': async (command) => ({
      taskId: command.taskId,
      cancelled: this.options.tasks.cancel(command.taskId),
    }),

    // Commands only some nodes run load their modules on first use (ssh2 alone sets up a 16 MB
    // WebAssembly memory): an idle agent needs none of them.
    // One build per tag at a time: two would race for the same reference.
    'image.build': (command) =>
      this.mutex.run(`image:${command.image}`, async () =>
        (await import('./image-build.js')).buildAndPush(this.options.engine, command, this.options.buildRoot),
      ),

    // Read-only: a redelivery may scan again, which changes nothing.
    'network.scan': async (command) =>
      (await import('./network-scan.js')).scanNetwork(
        command.subnet,
        command.ports,
        this.options.networkScan,
      ),

    // Loaded with the executor: small, and a prune lists its candidates before a start queued
    // behind it can change them (an import's await would let the start run first).
    'engine.prune': () =>
      pruneEngine({
        engine: this.options.engine,
        journal: this.options.journal,
        lock: (key, fn) => this.mutex.run(key, fn),
      }),

    'disk.audit': () => auditDisk({ engine: this.options.engine, stateDir: this.options.stateDir ?? null }),

    'host.exec': async (command) => {
      if (!this.options.allowExec) throw new ExecDisabledError();
      // Bounds again: the envelope may come from a control plane that does not check them.
      const timeoutSeconds = Math.min(Math.max(command.timeoutSeconds, 1), HOST_EXEC.maxTimeoutSeconds);
      const { runHostCommand } = await import('./host-exec.js');
      return runHostCommand(command.command, {
        timeoutMs: timeoutSeconds * 1000,
        maxOutputBytes: Math.min(
          this.options.maxExecOutputBytes ?? HOST_EXEC.maxOutputBytes,
          HOST_EXEC.maxOutputBytes,
        ),
      });
    },

    // One install per host at a time; a redelivery after a crash installs again, which replaces the first.
    'host.install': (command, commandId) =>
      this.mutex.run(`install:${command.host}:${command.port}`, async () => {
        const deps = this.options.hostInstall;
        if (!deps) throw new Error('this agent is not set up to install other hosts');
        const { installHost } = await import('./host-install.js');
        return installHost(command, commandId, { ...deps, logger: this.log });
      }),
  };

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

async function requireContainer(engine: EngineDriver, instanceId: string): Promise<ManagedContainer> {
  const c = await engine.findByInstance(instanceId);
  if (!c) throw new Error(`no container on this node for instance ${instanceId}`);
  return c;
}

function describe(c: ManagedContainer) {
  return {
    containerId: c.id,
    name: c.name,
    instanceId: c.instanceId,
    state: c.state,
    exitCode: c.exitCode,
    ports: c.ports,
    ...(c.startedAt ? { startedAt: c.startedAt } : {}),
  };
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
