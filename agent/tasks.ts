import { call } from './http.js';
import { LABELS, type AgentEvent } from '../protocol/messages.js';
import { type Command, type ContainerSpec } from '../protocol/commands.js';
import { sleep } from './backoff.js';
import { ensureStarted } from './engine/startup.js';
import type { EngineDriver, ManagedContainer } from './engine/types.js';
import type { EventSink } from './events.js';
import type { CommandJournal } from './journal.js';
import type { Logger } from './log.js';

export type TaskRunCommand = Extract<Command, { type: 'task.run' }>;
export type TaskFile = { name: string; contentType: string; base64: string };

export interface TaskRunnerOptions {
  engine: EngineDriver;
  events: EventSink;
  journal: CommandJournal;
  logger: Logger;
  /** Serialises engine work per instance id with the executor. */
  withLock?: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
  /** How long a model server may take to answer HTTP at all (loading weights can be slow). */
  readyTimeoutMs?: number;
  readyPollMs?: number;
  host?: string;
  now?: () => Date;
}

interface RunningTask {
  commandId: string;
  controller: AbortController;
  done: Promise<void>;
}

/** Runs cancelled before they arrived, remembered this long (by count) for their late task.run. */
const EARLY_CANCELS = 1_000;

/** Cancellation reasons, so the finished event says which way the task ended. */
class TaskCancelled extends Error {
  override name = 'TaskCancelled';
}

/**
 * Runs inference tasks against the node's model server: makes sure the server container runs
 * (reusing one that already serves the model), waits for its HTTP port, POSTs the request and
 * reports task.progress and task.finished events. task.cancel aborts the request in flight.
 */
export class TaskRunner {
  private readonly running = new Map<string, RunningTask>();
  /** task.run command ids whose task.cancel came first (commands to a node are not ordered). */
  private readonly cancelledRuns = new Set<string>();
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly options: TaskRunnerOptions) {
    this.log = options.logger.child({ component: 'tasks' });
    this.now = options.now ?? (() => new Date());
  }

  /** Starts the task in the background; a second delivery of a running task is a no-op. */
  async accept(
    command: TaskRunCommand,
    commandId: string,
  ): Promise<{ taskId: string; accepted: true; alreadyRunning: boolean }> {
    if (this.running.has(command.taskId))
      return { taskId: command.taskId, accepted: true, alreadyRunning: true };
    await this.options.journal.taskStarted(command.taskId, commandId);
    if (this.cancelledRuns.delete(commandId)) {
      // Its cancel came first: it ends as cancelled without starting a server or a request.
      this.log.info('task cancelled before it started', { taskId: command.taskId });
      await this.finish(commandId, {
        type: 'task.finished',
        taskId: command.taskId,
        status: 'cancelled',
        files: [],
        error: 'cancelled',
        at: this.now().toISOString(),
      });
      return { taskId: command.taskId, accepted: true, alreadyRunning: false };
    }
    const controller = new AbortController();
    const entry: RunningTask = { commandId, controller, done: Promise.resolve() };
    this.running.set(command.taskId, entry);
    // The journal keeps the task in flight until its task.finished is delivered (run's finish).
    entry.done = this.run(command, commandId, controller.signal).finally(() =>
      this.running.delete(command.taskId),
    );
    return { taskId: command.taskId, accepted: true, alreadyRunning: false };
  }

  /**
   * Cancels the task, or only its run `runCommandId` when named: a cancel of an earlier run
   * leaves a later one running, and a cancel whose run has not arrived yet is kept for it.
   */
  cancel(taskId: string, runCommandId?: string): boolean {
    const task = this.running.get(taskId);
    if (task && (runCommandId === undefined || task.commandId === runCommandId)) {
      task.controller.abort(new TaskCancelled('cancelled by task.cancel'));
      return true;
    }
    if (runCommandId !== undefined) {
      this.cancelledRuns.add(runCommandId);
      if (this.cancelledRuns.size > EARLY_CANCELS)
        this.cancelledRuns.delete(this.cancelledRuns.values().next().value as string);
    }
    return false;
  }

  isRunning(taskId: string): boolean {
    return this.running.has(taskId);
  }

  /**
   * Tasks the journal says were in flight when the agent last stopped: running then, or ended
   * with their task.finished not yet delivered. Each is reported once more (failed when it was
   * running, or when its result went with the process; a failure or cancellation as it was).
   * Only those whose task.run result was recorded; without one the command was never
   * acknowledged and its redelivery will run the task again.
   */
  async reportOrphans(): Promise<number> {
    let count = 0;
    for (const task of this.options.journal.activeTasks()) {
      if (this.running.has(task.taskId)) continue;
      if (!this.options.journal.get(task.commandId)) {
        await this.options.journal.taskEnded(task.taskId);
        continue;
      }
      const outcome = task.outcome;
      this.finished(task.commandId, {
        type: 'task.finished',
        taskId: task.taskId,
        status: outcome?.status === 'cancelled' ? 'cancelled' : 'failed',
        files: [],
        error:
          outcome === undefined
            ? 'the agent restarted while the task was running'
            : outcome.status === 'completed'
              ? 'the task completed, but the agent restarted before it delivered the result: its outputs are lost'
              : (outcome.error ?? outcome.status),
        at: this.now().toISOString(),
      });
      count++;
    }
    return count;
  }

  /**
   * Sends task.finished, naming its run; the task leaves the journal once the control plane
   * accepted it.
   */
  private finished(commandId: string, event: Extract<AgentEvent, { type: 'task.finished' }>): void {
    this.options.events.send({ ...event, runCommandId: commandId }, () =>
      this.options.journal
        .taskEnded(event.taskId, commandId)
        .catch((error: unknown) => this.log.warn('journal write failed', { taskId: event.taskId, error })),
    );
  }

  /** Notes the outcome in the journal (a restart before delivery still knows it), then sends it. */
  private async finish(
    commandId: string,
    event: Extract<AgentEvent, { type: 'task.finished' }>,
  ): Promise<void> {
    await this.options.journal
      .taskFinished(event.taskId, commandId, {
        status: event.status,
        ...(event.error !== undefined ? { error: event.error } : {}),
      })
      .catch((error: unknown) => this.log.warn('journal write failed', { taskId: event.taskId, error }));
    this.finished(commandId, event);
  }

  /** Aborts running tasks (they report failed) and waits for them to wind down. */
  async shutdown(timeoutMs = 5_000): Promise<void> {
    const tasks = [...this.running.values()];
    for (const t of tasks) t.controller.abort(new Error('the agent is shutting down'));
    await Promise.race([Promise.allSettled(tasks.map((t) => t.done)), sleep(timeoutMs)]);
  }

  private emit(event: AgentEvent): void {
    this.options.events.send(event);
  }

  private progress(taskId: string, progress: number): void {
    this.emit({ type: 'task.progress', taskId, progress, at: this.now().toISOString() });
  }

  private async run(command: TaskRunCommand, commandId: string, cancel: AbortSignal): Promise<void> {
    const { taskId } = command;
    const deadline = AbortSignal.timeout(command.timeoutSeconds * 1000);
    const signal = AbortSignal.any([cancel, deadline]);
    const log = this.log.child({ taskId, model: command.model });
    const started = Date.now();
    this.progress(taskId, 0);
    try {
      const server = await this.ensureModelServer(command);
      throwIfAborted(signal);
      this.progress(taskId, 10);
      const port = serverPort(server, command.server);
      const base = `http://${this.options.host ?? '127.0.0.1'}:${port}`;
      await this.waitUntilAnswering(base, server.id, signal);
      this.progress(taskId, 30);

      const path = command.request.path.startsWith('/') ? command.request.path : `/${command.request.path}`;
      // The deadline (`signal`) alone bounds the call.
      const res = await call(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(command.request.body ?? {}),
        signal,
      });
      const text = res.text;
      if (res.statusCode < 200 || res.statusCode >= 300) {
        throw new Error(`model server answered ${res.statusCode}: ${text.slice(0, 500)}`);
      }
      const { result, files } = splitModelResponse(parseBody(text));
      this.progress(taskId, 100);
      await this.finish(commandId, {
        type: 'task.finished',
        taskId,
        status: 'completed',
        result,
        files,
        at: this.now().toISOString(),
      });
      log.info('task completed', { ms: Date.now() - started, files: files.length });
    } catch (error) {
      const cancelled = cancel.aborted && cancel.reason instanceof TaskCancelled;
      const message = cancelled
        ? 'cancelled'
        : deadline.aborted
          ? `timed out after ${command.timeoutSeconds} s`
          : cancel.aborted
            ? String((cancel.reason as Error)?.message ?? cancel.reason)
            : error instanceof Error
              ? error.message
              : String(error);
      await this.finish(commandId, {
        type: 'task.finished',
        taskId,
        status: cancelled ? 'cancelled' : 'failed',
        files: [],
        error: message,
        at: this.now().toISOString(),
      });
      if (cancelled) log.info('task cancelled');
      else log.warn('task failed', { error: message });
    }
  }

  /** The model server: this instance if it serves the model, else any running server of the model, else a new one. */
  private async ensureModelServer(command: TaskRunCommand): Promise<ManagedContainer> {
    const spec: ContainerSpec = {
      ...command.server,
      kind: 'model',
      labels: { ...command.server.labels, [LABELS.model]: command.model },
    };
    const lock = this.options.withLock ?? (<T>(_key: string, fn: () => Promise<T>) => fn());
    return lock(spec.instanceId, async () => {
      const engine = this.options.engine;
      const own = await engine.findByInstance(spec.instanceId);
      if (own && own.labels[LABELS.model] !== command.model) {
        // This instance now serves another model: replace it.
        await engine.remove(own.id, true);
      } else if (!own) {
        const serving = (await engine.list()).find(
          (c) => c.kind === 'model' && c.running && c.labels[LABELS.model] === command.model,
        );
        if (serving) return serving;
      }
      const { container } = await ensureStarted(engine, spec, { model: command.model });
      return container;
    });
  }

  private async waitUntilAnswering(base: string, containerId: string, signal: AbortSignal): Promise<void> {
    const until = Date.now() + (this.options.readyTimeoutMs ?? 300_000);
    const pollMs = this.options.readyPollMs ?? 500;
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      try {
        await call(`${base}/`, {
          method: 'GET',
          signal: AbortSignal.any([signal, AbortSignal.timeout(2_000)]),
        });
        return; // any HTTP answer, even 404, means the server is up
      } catch {
        throwIfAborted(signal);
      }
      // A server that died will never answer: fail with its own last words.
      if (attempt % 4 === 3) {
        const c = await this.options.engine.inspect(containerId);
        if (!c.running) {
          const tail = await this.options.engine.logs(containerId, 20).catch(() => '');
          throw new Error(
            `model server exited (code ${c.exitCode ?? 'unknown'}) before answering: ${tail.slice(-500)}`,
          );
        }
      }
      if (Date.now() > until)
        throw new Error(
          `model server did not answer on ${base} within ${this.options.readyTimeoutMs ?? 300_000} ms`,
        );
      await sleep(pollMs, signal);
    }
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
}

function serverPort(server: ManagedContainer, spec: ContainerSpec): number {
  const wanted = spec.ports[0]?.containerPort;
  const port = server.ports.find((p) => p.containerPort === wanted) ?? server.ports[0];
  if (!port) throw new Error(`model server ${server.name} publishes no port; its spec must list one`);
  return port.hostPort;
}

function parseBody(text: string): unknown {
  if (!text) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { text };
  }
}

function isFile(value: unknown): value is TaskFile {
  const v = value as Partial<TaskFile> | null;
  return typeof v?.name === 'string' && typeof v.contentType === 'string' && typeof v.base64 === 'string';
}

/** `images: [{name, contentType, base64}]` in the answer become the task's files; the rest is the result. */
export function splitModelResponse(body: unknown): { result: Record<string, unknown>; files: TaskFile[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { result: { value: body }, files: [] };
  const { images, ...rest } = body as Record<string, unknown>;
  if (Array.isArray(images) && images.length > 0 && images.every(isFile)) {
    return {
      result: rest,
      files: images.map((i) => ({ name: i.name, contentType: i.contentType, base64: i.base64 })),
    };
  }
  return { result: body as Record<string, unknown>, files: [] };
}
