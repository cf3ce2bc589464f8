import type { AppContext } from '../core/context.js';
import type { CommandItem, CompletedCommand } from '../nodes/commands.js';
import { applyHostInstallResult } from '../commander/install-queue-agent.js';
import { applyNetworkScanResult } from '../commander/network.js';
import { applyCommandResult } from '../orchestrator/observation.js';
import { COMMANDS, type CommandType } from '../../protocol/commands.js';

export type Applier<T extends CommandType> = (ctx: AppContext, command: CompletedCommand<T>) => Promise<void>;

/**
 * The control plane's half of the commands of protocol/commands.ts: the area that issued a
 * command applies its result to its own records here, on every report (appliers are conditional
 * transitions, so a repeated report changes nothing). Other areas react to the
 * `command.completed` event instead (functions/event-handlers.ts). Commands without an applier
 * (logs, host.exec, a disk audit, ...) are answered to the caller waiting on the command record.
 */
export const COMMAND_APPLIERS: { [T in CommandType]?: Applier<T> } = {
  'container.start': applyCommandResult,
  'container.stop': applyCommandResult,
  'container.remove': applyCommandResult,
  'container.update': applyCommandResult,
  'container.restart': applyCommandResult,
  'network.scan': applyNetworkScanResult,
  'host.install': applyHostInstallResult,
};

/** Applies a reported result through its command's applier, if it has one. */
export async function applyResult(ctx: AppContext, command: CommandItem): Promise<void> {
  const type = command.type;
  const applier = COMMAND_APPLIERS[type] as Applier<CommandType> | undefined;
  if (!applier) return;
  const out =
    command.status === 'succeeded' ? COMMANDS[type].output.safeParse(command.output ?? {}) : undefined;
  if (out && !out.success)
    ctx.logger.warn('command output does not match its declaration', { commandId: command.commandId, type });
  await applier(ctx, { ...command, ...(out?.success ? { parsed: out.data } : {}) });
}
