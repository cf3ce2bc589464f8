import { rename } from 'node:fs/promises';
import * as z from 'zod';
import { commandResult, type CommandResult } from '../protocol/commands.js';
import { readJsonFile, writeFileAtomic } from './state.js';

const journalEntry = z.object({
  commandId: z.string(),
  type: z.string(),
  result: commandResult,
  completedAt: z.string(),
  /** The control plane accepted the result; a duplicate delivery re-reports it anyway. */
  reported: z.boolean().default(false),
  /** The output was dropped once reported (too big to keep): the control plane holds it. */
  outputDropped: z.boolean().optional(),
});
export type JournalEntry = z.infer<typeof journalEntry>;

const taskEntry = z.object({
  taskId: z.string(),
  commandId: z.string(),
  startedAt: z.string(),
  /** How it ended on this node, while task.finished was still on its way (not delivered yet). */
  outcome: z
    .object({ status: z.enum(['completed', 'failed', 'cancelled']), error: z.string().optional() })
    .optional(),
});
export type TaskEntry = z.infer<typeof taskEntry>;

const begunEntry = z.object({ commandId: z.string(), type: z.string(), startedAt: z.string() });
/** A command this agent began executing and has no result for yet. */
export type BegunEntry = z.infer<typeof begunEntry>;

const journalFile = z.object({
  version: z.literal(1),
  commands: z.array(journalEntry).default([]),
  /** Container exits already reported, keyed `containerId@finishedAt`. */
  exits: z.array(z.object({ key: z.string(), at: z.string() })).default([]),
  /** task.run commands whose task.finished the control plane has not accepted yet. */
  tasks: z.array(taskEntry).default([]),
  /** Commands begun without a result yet: found here after a restart, they were interrupted. */
  begun: z.array(begunEntry).default([]),
});

/**
 * Outputs bigger than this (log text, a host.exec's stdout) are kept only until the control plane
 * accepted them: the journal is rewritten on every change, and it holds no command output longer
 * than it must. A later duplicate re-reports the result without it, which the control plane ignores.
 */
export const MAX_REPORTED_OUTPUT_CHARS = 4 * 1024;

export interface JournalOptions {
  /** Commands kept; older ones are forgotten (a redelivery that old is not expected). */
  maxCommands?: number;
  maxExits?: number;
  now?: () => Date;
  /** Told when a corrupt journal was set aside. */
  onCorrupt?: (path: string, error: unknown) => void;
}

/**
 * What the agent must remember across restarts to execute each command at most once: executed
 * command ids with their results, exits already reported, tasks in flight. One small JSON file,
 * rewritten atomically on every change; writes are serialised so the last state always lands.
 */
export class CommandJournal {
  private readonly commands = new Map<string, JournalEntry>();
  private readonly exits = new Map<string, string>();
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly begunCommands = new Map<string, BegunEntry>();
  private writing: Promise<void> = Promise.resolve();
  private readonly maxCommands: number;
  private readonly maxExits: number;
  private readonly now: () => Date;

  private constructor(
    readonly path: string,
    options: JournalOptions,
  ) {
    this.maxCommands = options.maxCommands ?? 1000;
    this.maxExits = options.maxExits ?? 1000;
    this.now = options.now ?? (() => new Date());
  }

  static async open(path: string, options: JournalOptions = {}): Promise<CommandJournal> {
    const journal = new CommandJournal(path, options);
    let raw: unknown;
    try {
      raw = await readJsonFile(path);
    } catch (error) {
      raw = { corrupt: error };
    }
    if (raw !== null) {
      const parsed = journalFile.safeParse(raw);
      if (parsed.success) {
        for (const e of parsed.data.commands) journal.commands.set(e.commandId, e);
        for (const e of parsed.data.exits) journal.exits.set(e.key, e.at);
        for (const t of parsed.data.tasks) journal.tasks.set(t.taskId, t);
        for (const b of parsed.data.begun) journal.begunCommands.set(b.commandId, b);
      } else {
        // Keep the evidence, start empty: refusing to start would strand the node.
        const aside = `${path}.corrupt-${Date.now()}`;
        await rename(path, aside).catch(() => undefined);
        options.onCorrupt?.(aside, parsed.error);
      }
    }
    return journal;
  }

  get(commandId: string): JournalEntry | undefined {
    return this.commands.get(commandId);
  }

  /** Whether (and when) a process of this agent began the command and never recorded its result. */
  begun(commandId: string): BegunEntry | undefined {
    return this.begunCommands.get(commandId);
  }

  /** On disk before the command touches anything: a redelivery after a crash then knows it was begun. */
  async begin(commandId: string, type: string): Promise<void> {
    this.begunCommands.set(commandId, { commandId, type, startedAt: this.now().toISOString() });
    trim(this.begunCommands, this.maxCommands);
    await this.flush();
  }

  async record(commandId: string, type: string, result: CommandResult): Promise<JournalEntry> {
    const entry: JournalEntry = {
      commandId,
      type,
      result,
      completedAt: this.now().toISOString(),
      reported: false,
    };
    this.commands.delete(commandId);
    this.commands.set(commandId, entry);
    this.begunCommands.delete(commandId);
    trim(this.commands, this.maxCommands);
    await this.flush();
    return entry;
  }

  async markReported(commandId: string): Promise<void> {
    const entry = this.commands.get(commandId);
    if (!entry || entry.reported) return;
    entry.reported = true;
    if (JSON.stringify(entry.result.output).length > MAX_REPORTED_OUTPUT_CHARS) {
      entry.result = { ...entry.result, output: {} };
      entry.outputDropped = true;
    }
    await this.flush();
  }

  hasExit(key: string): boolean {
    return this.exits.has(key);
  }

  async recordExit(key: string): Promise<void> {
    this.exits.set(key, this.now().toISOString());
    trim(this.exits, this.maxExits);
    await this.flush();
  }

  activeTasks(): TaskEntry[] {
    return [...this.tasks.values()];
  }

  async taskStarted(taskId: string, commandId: string): Promise<void> {
    this.tasks.set(taskId, { taskId, commandId, startedAt: this.now().toISOString() });
    await this.flush();
  }

  /** The task ended here; it stays in flight until its task.finished is delivered (then taskEnded). */
  async taskFinished(
    taskId: string,
    commandId: string,
    outcome: NonNullable<TaskEntry['outcome']>,
  ): Promise<void> {
    const task = this.tasks.get(taskId);
    if (task?.commandId !== commandId) return;
    this.tasks.set(taskId, { ...task, outcome });
    await this.flush();
  }

  /** `commandId`: only that run's entry (a later run of the same task may have replaced it). */
  async taskEnded(taskId: string, commandId?: string): Promise<void> {
    const task = this.tasks.get(taskId);
    if (!task || (commandId !== undefined && task.commandId !== commandId)) return;
    this.tasks.delete(taskId);
    await this.flush();
  }

  /** Resolves once everything recorded so far is on disk. */
  flush(): Promise<void> {
    const write = async (): Promise<void> => {
      const data = {
        version: 1 as const,
        commands: [...this.commands.values()],
        exits: [...this.exits].map(([key, at]) => ({ key, at })),
        tasks: [...this.tasks.values()],
        begun: [...this.begunCommands.values()],
      };
      await writeFileAtomic(this.path, `${JSON.stringify(data)}\n`);
    };
    // Chain even after a failed write so one disk error does not wedge later writes.
    const next = this.writing.then(write, write);
    this.writing = next.catch(() => undefined);
    return next;
  }
}

function trim<K, V>(map: Map<K, V>, max: number): void {
  // Maps iterate in insertion order: the first keys are the oldest.
  for (const key of map.keys()) {
    if (map.size <= max) break;
    map.delete(key);
  }
}
