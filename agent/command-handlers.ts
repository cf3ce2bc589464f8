import { HOST_EXEC, type CommandOf, type CommandOutput, type CommandType } from '../protocol/commands.js';
import { EXEC_DISABLED } from '../protocol/agent-api.js';
import { LABELS } from '../protocol/messages.js';
import type { OutputFollower } from './follow.js';
import { ensureStarted } from './engine/startup.js';
import type { EngineDriver, ManagedContainer } from './engine/types.js';
import type { HostInstallDeps } from './host-install.js';
import type { CommandJournal } from './journal.js';
import type { Logger } from './log.js';
import { auditDisk, pruneEngine } from './maintenance.js';
import type { KeyedMutex } from './mutex.js';
import { checkSpec, DEFAULT_POLICY, type NodePolicy } from './policy.js';
import type { ScanOptions } from './network-scan.js';
import type { TaskRunner } from './tasks.js';
import type { CheckpointSync } from './checkpoints.js';

/** Set when a process of this agent began the command and died before its result was recorded. */
export interface Resumed {
  beganAt: number;
}

/** The agent's half of each command: what it does with the command's input, and the output it answers. */
export type CommandHandlers = {
  [T in CommandType]: (
    command: CommandOf<T>,
    commandId: string,
    resumed?: Resumed,
  ) => Promise<CommandOutput<T>>;
};

/** Hooks around command execution (Nomad's runner hooks, reduced to what the agent needs). */
export interface HandlerHooks {
  /** About to stop or replace this container on purpose: the watcher must not report it as a crash. */
  expectExit?(containerId: string): void;
}

/** What the handlers act on: the engine, the task runner, and what the node's owner allowed. */
export interface HandlerDeps {
  engine: EngineDriver;
  journal: CommandJournal;
  tasks: TaskRunner;
  hooks?: HandlerHooks;
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

/** The agent's half of every command of protocol/commands.ts; the compiler checks none is missing. */
export function commandHandlers(deps: HandlerDeps, mutex: KeyedMutex, log: Logger): CommandHandlers {
  return {
    'container.start': (command, commandId) =>
      mutex.run(command.spec.instanceId, async () => {
        const { checkpoints, engine } = deps;
        const spec = checkpoints?.place(command.spec) ?? command.spec;
        // Before the engine sees it: the policy is the node owner's, whatever the command says.
        checkSpec(spec, deps.policy ?? DEFAULT_POLICY, deps.engineSocket);
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
      mutex.run(command.instanceId, async () => {
        const { engine, hooks } = deps;
        const c = await engine.findByInstance(command.instanceId);
        if (!c) return { found: false as const, instanceId: command.instanceId };
        hooks?.expectExit?.(c.id);
        await engine.stop(c.id, command.timeoutSeconds);
        return { found: true as const, ...describe(await engine.inspect(c.id)) };
      }),

    'container.remove': (command) =>
      mutex.run(command.instanceId, async () => {
        const { engine, hooks } = deps;
        const c = await engine.findByInstance(command.instanceId);
        if (!c) return { found: false, removed: false, instanceId: command.instanceId };
        hooks?.expectExit?.(c.id);
        await engine.remove(c.id, command.force);
        return { found: true, removed: true, containerId: c.id, instanceId: command.instanceId };
      }),

    'container.restart': (command, _commandId, resumed) =>
      mutex.run(command.instanceId, async () => {
        const { engine, hooks } = deps;
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
      mutex.run(command.instanceId, async () => {
        const { engine, hooks } = deps;
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
      const { engine } = deps;
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
      const { engine, follower } = deps;
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

    'task.run': (command, commandId) => deps.tasks.accept(command, commandId),

    'task.cancel': async (command) => ({
      taskId: command.taskId,
      cancelled: deps.tasks.cancel(command.taskId, command.runCommandId),
    }),

    // Commands only some nodes run load their modules on first use (ssh2 alone sets up a 16 MB
    // WebAssembly memory): an idle agent needs none of them.
    // One build per tag at a time: two would race for the same reference.
    'image.build': (command) =>
      mutex.run(`image:${command.image}`, async () =>
        (await import('./image-build.js')).buildAndPush(deps.engine, command, deps.buildRoot),
      ),

    // Read-only: a redelivery may scan again, which changes nothing.
    'network.scan': async (command) =>
      (await import('./network-scan.js')).scanNetwork(command.subnet, command.ports, deps.networkScan),

    // Loaded with the executor: small, and a prune lists its candidates before a start queued
    // behind it can change them (an import's await would let the start run first).
    'engine.prune': () =>
      pruneEngine({
        engine: deps.engine,
        journal: deps.journal,
        lock: (key, fn) => mutex.run(key, fn),
      }),

    'disk.audit': () => auditDisk({ engine: deps.engine, stateDir: deps.stateDir ?? null }),

    'host.exec': async (command) => {
      if (!deps.allowExec) throw new ExecDisabledError();
      // Bounds again: the envelope may come from a control plane that does not check them.
      const timeoutSeconds = Math.min(Math.max(command.timeoutSeconds, 1), HOST_EXEC.maxTimeoutSeconds);
      const { runHostCommand } = await import('./host-exec.js');
      return runHostCommand(command.command, {
        timeoutMs: timeoutSeconds * 1000,
        maxOutputBytes: Math.min(
          deps.maxExecOutputBytes ?? HOST_EXEC.maxOutputBytes,
          HOST_EXEC.maxOutputBytes,
        ),
      });
    },

    // One install per host at a time; a redelivery after a crash installs again, which replaces the first.
    'host.install': (command, commandId) =>
      mutex.run(`install:${command.host}:${command.port}`, async () => {
        const install = deps.hostInstall;
        if (!install) throw new Error('this agent is not set up to install other hosts');
        const { installHost } = await import('./host-install.js');
        return installHost(command, commandId, { ...install, logger: log });
      }),
  };
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
