import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { ContainerSpec } from '../../protocol/commands.js';
import { LABELS } from '../../protocol/messages.js';
import type { EngineDriver, ManagedContainer, StartOptions } from './types.js';

/** The NVIDIA Container Toolkit's hook is what makes Docker honour DeviceRequests with driver nvidia. */
export async function nvidiaHookOnPath(): Promise<boolean> {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    for (const name of ['nvidia-container-runtime-hook', 'nvidia-container-cli']) {
      try {
        await access(join(dir, name), constants.X_OK);
        return true;
      } catch {
        // next
      }
    }
  }
  return false;
}

/**
 * Makes sure a container for spec.instanceId runs: reuses (and starts) one that carries the
 * instance label, e.g. after the agent died mid-start, and only otherwise pulls and creates.
 */
export async function ensureStarted(
  engine: EngineDriver,
  spec: ContainerSpec,
  options: StartOptions = {},
): Promise<{ container: ManagedContainer; reused: boolean }> {
  const existing = await engine.findByInstance(spec.instanceId);
  if (existing) {
    // This very start created it and it has run: its work is done (a later stop may have ended it,
    // or it exited at once), and starting it again would undo that.
    const ranForThisCommand =
      options.commandId !== undefined &&
      existing.labels[LABELS.command] === options.commandId &&
      existing.startedAt !== null;
    if (ranForThisCommand) return { container: existing, reused: true };
    if (!existing.running) await engine.start(existing.id);
    return { container: existing.running ? existing : await engine.inspect(existing.id), reused: true };
  }
  await engine.ensureImage(spec.imageId);
  return { container: await engine.createAndStart(spec, options), reused: false };
}
