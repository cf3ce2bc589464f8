import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { isSafeCheckpointName, type ChunkTransfer } from '../protocol/checkpoints.js';

/**
 * The checkpoint folder's files as the sync sees them: which files there are (regular files only,
 * no links), their chunks' SHA-256s, a chunk's bytes, and a file written back from its chunks.
 */

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Regular files under `dir`, as `/`-separated relative names; links and odd names are left out. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = join(d, e.name);
      const name = relative(dir, full).split(sep).join('/');
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && isSafeCheckpointName(name) && !/\.fleet-[0-9a-f]{8}\.part$/.test(name))
        out.push(name);
    }
  };
  await walk(dir);
  return out.sort();
}

/** The path a stored name is restored to; refused when a folder on the way is a link. */
export async function safeTarget(dir: string, name: string): Promise<string> {
  if (!isSafeCheckpointName(name)) throw new Error(`unsafe checkpoint file name: ${name}`);
  const parts = name.split('/');
  let at = dir;
  for (const p of parts.slice(0, -1)) {
    at = join(at, p);
    const s = await lstat(at).catch(() => null);
    if (s && !s.isDirectory())
      throw new Error(`checkpoint path ${name} goes through ${p}, which is not a folder`);
  }
  return join(dir, ...parts);
}

export async function hashFile(
  path: string,
  chunkBytes: number,
): Promise<{ size: number; chunks: string[] }> {
  const s = await lstat(path);
  if (!s.isFile()) throw new Error(`${path} is not a regular file`);
  const fh = await open(path, 'r');
  try {
    const chunks: string[] = [];
    const buf = Buffer.alloc(chunkBytes);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, chunkBytes, size);
      if (bytesRead === 0) break;
      chunks.push(sha256(buf.subarray(0, bytesRead)));
      size += bytesRead;
      if (bytesRead < chunkBytes) break;
    }
    return { size, chunks };
  } finally {
    await fh.close();
  }
}

export async function readChunk(path: string, offset: number, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(size);
    const { bytesRead } = await fh.read(buf, 0, size, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Writes a file from its chunks, each checked against its name; the file appears whole or not at all. */
export async function downloadFile(
  fetchChunk: (t: ChunkTransfer) => Promise<Buffer>,
  path: string,
  chunks: string[],
  where: Map<string, ChunkTransfer>,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.fleet-${randomBytes(4).toString('hex')}.part`;
  const fh = await open(temp, 'wx', 0o644);
  try {
    for (const hash of chunks) {
      const t = where.get(hash);
      if (!t) throw new Error(`no download offered for chunk ${hash}`);
      const bytes = await fetchChunk(t);
      if (sha256(bytes) !== hash) throw new Error(`chunk ${hash} arrived corrupt`);
      await fh.write(bytes);
    }
    await fh.close();
    // rename replaces a link at the target instead of following it.
    await rename(temp, path);
  } catch (error) {
    await fh.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}
