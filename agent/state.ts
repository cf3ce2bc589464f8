import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as z from 'zod';
import { commandChannel } from '../protocol/messages.js';

/**
 * Writes a file so readers see the old content or the new, never a torn mix: write a temp file
 * beside it, fsync, rename over, fsync the folder (so the rename itself survives a power cut).
 */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

/** Reads JSON; null when the file does not exist. Throws on unreadable or malformed content. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return JSON.parse(text) as unknown;
}

export const storedRegistration = z.object({
  url: z.string(),
  nodeName: z.string(),
  nodeId: z.string(),
  token: z.string(),
  channel: commandChannel,
  heartbeatIntervalSeconds: z.number().int().positive(),
  registeredAt: z.string(),
});
export type StoredRegistration = z.infer<typeof storedRegistration>;

/** Paths under the agent's state folder. */
export function statePaths(stateDir: string): {
  registration: string;
  journal: string;
  processes: string;
  restarting: string;
} {
  return {
    registration: join(stateDir, 'registration.json'),
    journal: join(stateDir, 'journal.json'),
    processes: join(stateDir, 'processes'),
    restarting: join(stateDir, RESTART_MARKER),
  };
}

/**
 * Left in the state folder by whoever restarts the agent on purpose (install.sh's upgrade): the
 * agent that stops next does not take its node offline, since it is back within seconds.
 */
export const RESTART_MARKER = 'restarting';

/** Whether a restart was announced (the marker is removed: it holds for one stop). */
export async function takeRestartMarker(stateDir: string): Promise<boolean> {
  try {
    await rm(statePaths(stateDir).restarting);
    return true;
  } catch {
    return false;
  }
}

/** The last registration, or null when none was stored or it is unreadable (then register afresh). */
export async function loadRegistration(stateDir: string): Promise<StoredRegistration | null> {
  try {
    const parsed = storedRegistration.safeParse(await readJsonFile(statePaths(stateDir).registration));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Holds the bearer token: owner-only file mode. */
export async function saveRegistration(stateDir: string, registration: StoredRegistration): Promise<void> {
  await writeFileAtomic(
    statePaths(stateDir).registration,
    `${JSON.stringify(registration, null, 2)}\n`,
    0o600,
  );
}
