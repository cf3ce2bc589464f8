import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TMP_SUFFIX = '.tmp';
const TMP_NAME = /\.\d+\.[0-9a-f]{8}\.tmp$/;

/** Whether a file name is one of writeFileAtomic's temp files (not yet, or never, renamed into place). */
export const isTempName = (name: string): boolean => TMP_NAME.test(name);

/**
 * Writes a file so readers (and a restart after a crash) see the old content or the new, never a
 * torn or empty one: write a temp file beside it, fsync, rename over, fsync the folder so the
 * rename itself survives a power cut.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`;
  try {
    const handle = await openMakingDir(tmp, mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dirname(path));
}

/** Opens a new file, making its folder (0700) only when missing: most writes go to a folder that exists. */
async function openMakingDir(file: string, mode: number) {
  try {
    return await open(file, 'w', mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    return open(file, 'w', mode);
  }
}

async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch (error) {
    // Some filesystems refuse fsync on a folder (EINVAL/EISDIR); the rename is still atomic there.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}

/** Removes temp files a crash left beside `path` (never the file itself). */
export async function removeStaleTemps(path: string): Promise<void> {
  const prefix = `${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix) && isTempName(n))
      .map((n) => rm(join(dirname(path), n), { force: true })),
  );
}
