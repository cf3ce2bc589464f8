import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { BlobInfo, Blobs } from '../ports/blobs.js';
import { isTempName, writeFileAtomic } from './atomic-file.js';

/** Artifacts in a local folder, for the embedded runtime. Keys never escape the folder. */
export class LocalBlobs implements Blobs {
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new Error(`Invalid key: ${key}`);
    return p;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await writeFileAtomic(this.path(key), body);
  }

  async get(key: string): Promise<{ body: Uint8Array } | undefined> {
    try {
      return { body: await readFile(this.path(key)) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<boolean> {
    const p = this.path(key);
    try {
      await stat(p);
    } catch {
      return false;
    }
    await rm(p);
    return true;
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (!isTempName(e.name)) {
          const key = relative(this.root, full).split(sep).join('/');
          if (!key.startsWith(prefix)) continue;
          const s = await stat(full);
          out.push({ key, size: s.size, modifiedAt: s.mtime.toISOString() });
        }
      }
    };
    // Only the folder the prefix names is walked: the keys of other areas are never read.
    await walk(this.path(prefix.slice(0, prefix.lastIndexOf('/') + 1)));
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }
}
