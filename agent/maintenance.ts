import { statfs } from 'node:fs/promises';
import type { DiskAuditOutput, EnginePruneOutput } from '../protocol/agent-api.js';
import { diskFromStatfs } from './collectors/system.js';
import { engineMessage } from './engine/errors.js';
import type { EngineDriver } from './engine/types.js';
import type { CommandJournal } from './journal.js';
import { exitKey } from './watcher.js';

/** engine.prune and disk.audit: the agent's part of the control plane's maintenance. */

const STOPPED = new Set(['exited', 'dead']);

export interface PruneDeps {
  engine: EngineDriver;
  journal: CommandJournal;
  /** The executor's per-instance lock: a start, restart or update of the same instance runs first. */
  lock: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

/**
 * Removes this node's stopped managed containers (engine.list() returns only those carrying the
 * agent's labels for this node) and the engine's dangling images. A container is removed only
 * when it is still stopped once its instance's lock is held, and only once its exit is in the
 * journal (the watcher reported it, with its last log lines): an exit not reported yet is kept
 * for the next run. Removal is never forced, so a container the engine restarted meanwhile stays.
 */
export async function pruneEngine(deps: PruneDeps): Promise<EnginePruneOutput> {
  const { engine, journal } = deps;
  const out: EnginePruneOutput = {
    containersRemoved: [],
    containersSkipped: [],
    imagesDeleted: [],
    spaceReclaimedBytes: 0,
  };
  for (const listed of await engine.list()) {
    if (!STOPPED.has(listed.state)) continue;
    await deps.lock(listed.instanceId || listed.id, async () => {
      const skip = (reason: string) =>
        out.containersSkipped.push({ containerId: listed.id, name: listed.name, reason });
      let c;
      try {
        c = await engine.inspect(listed.id);
      } catch {
        return; // removed meanwhile
      }
      if (!STOPPED.has(c.state)) return skip(`${c.state} again`);
      if (!journal.hasExit(exitKey(c))) return skip('its exit is not reported yet');
      try {
        await engine.remove(c.id, false);
      } catch (error) {
        return skip(`the engine refused: ${engineMessage(error)}`);
      }
      out.containersRemoved.push({
        containerId: c.id,
        name: c.name,
        instanceId: c.instanceId,
        kind: c.kind,
        state: c.state,
      });
    });
  }
  const images = await engine.pruneDanglingImages();
  out.imagesDeleted = images.imagesDeleted;
  out.spaceReclaimedBytes = images.spaceReclaimedBytes;
  return out;
}

export interface AuditDeps {
  engine: EngineDriver;
  stateDir: string | null;
  statfs?: (path: string) => Promise<{ bsize: number; blocks: number; bfree: number; bavail: number }>;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

async function filesystemOf(
  role: 'engine_root' | 'state_dir',
  path: string | null,
  read: NonNullable<AuditDeps['statfs']>,
): Promise<DiskAuditOutput['filesystems'][number]> {
  if (!path) {
    const why =
      role === 'engine_root' ? 'the engine does not report its root folder' : 'no state folder configured';
    return { role, path, error: why };
  }
  try {
    const d = diskFromStatfs(path, await read(path));
    return {
      role,
      path,
      totalBytes: d.totalBytes,
      usedBytes: d.usedBytes,
      freeBytes: d.freeBytes,
      // As df computes Use%: used over what users can have (used + available).
      usedPercent:
        d.usedBytes + d.freeBytes > 0 ? round1((d.usedBytes / (d.usedBytes + d.freeBytes)) * 100) : 0,
    };
  } catch (error) {
    // An engine on another host (DOCKER_HOST=tcp://...) keeps its root where this agent cannot look.
    const code = (error as { code?: unknown }).code;
    return {
      role,
      path,
      error: `cannot read it from the agent: ${typeof code === 'string' ? code : (error as Error).message}`,
    };
  }
}

/** statfs of the engine's root and the state folder, and the engine's own accounting; a part that fails says why. */
export async function auditDisk(deps: AuditDeps): Promise<DiskAuditOutput> {
  const read = deps.statfs ?? ((p: string) => statfs(p));
  const caps = await deps.engine.capabilities();
  const [root, state, usage] = await Promise.all([
    filesystemOf('engine_root', caps.rootDir, read),
    filesystemOf('state_dir', deps.stateDir, read),
    deps.engine.diskUsage().then(
      (u) => ({ ok: true as const, u }),
      (error: unknown) => ({ ok: false as const, error: engineMessage(error) }),
    ),
  ]);
  return {
    filesystems: [root, state],
    engine: usage.ok ? { name: caps.name, rootDir: caps.rootDir, ...usage.u } : null,
    ...(usage.ok ? {} : { engineError: usage.error }),
  };
}
