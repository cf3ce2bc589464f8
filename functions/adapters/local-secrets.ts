import { readFile } from 'node:fs/promises';
import type { Secrets } from '../ports/secrets.js';
import { removeStaleTemps, writeFileAtomic } from './atomic-file.js';

/** The secrets file exists but cannot be used: starting with no secrets would lose them (and the API key). */
export class SecretsFileError extends Error {
  constructor(file: string, reason: string) {
    super(
      `Secrets file ${file} ${reason}. Refusing to start with no secrets: restore the file, or move it aside to start without them.`,
    );
    this.name = 'SecretsFileError';
  }
}

/** Reads and checks the file; an absent file is an empty set (first start), anything else unusable is an error. */
async function readSecretsFile(file: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new Map();
    throw new SecretsFileError(file, `cannot be read (${code ?? (error as Error).message})`);
  }
  if (!text.trim()) throw new SecretsFileError(file, 'is empty');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SecretsFileError(file, 'is not valid JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new SecretsFileError(file, 'does not hold a JSON object');
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.some(([, v]) => typeof v !== 'string'))
    throw new SecretsFileError(file, 'holds a value that is not a string');
  return new Map(entries as [string, string][]);
}

/**
 * Secrets for the embedded runtime: a JSON file readable by its owner only, in the data folder
 * (or memory with --memory). On AWS and emulators the SSM adapter takes this place.
 * A change is acknowledged only once the file holding it is on disk; writes are serialised
 * (changes made while one is in flight share the next one) and atomic (temp file, fsync, rename).
 */
export class LocalSecrets implements Secrets {
  private loaded?: Promise<Map<string, string>>;
  /** The write queued behind the one in flight; later changes join it. */
  private queued?: Promise<void>;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly file?: string) {}

  /** Reads the file now, so a damaged one stops the start with a clear error instead of the first request. */
  async open(): Promise<void> {
    if (this.file) await removeStaleTemps(this.file);
    await this.load();
  }

  private load(): Promise<Map<string, string>> {
    if (!this.loaded) {
      const loading = this.file ? readSecretsFile(this.file) : Promise.resolve(new Map<string, string>());
      this.loaded = loading;
      // A failed read is not kept as the result: the next call reads again.
      loading.catch(() => {
        if (this.loaded === loading) this.loaded = undefined;
      });
    }
    return this.loaded;
  }

  /**
   * Writes what memory holds once the write in flight is done. Memory stays the truth after a
   * failed write (its callers got the error; the next write carries the change).
   */
  private persist(values: Map<string, string>): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    if (this.queued) return this.queued;
    const write = this.chain.then(() => {
      this.queued = undefined;
      return writeFileAtomic(file, JSON.stringify(Object.fromEntries(values)), 0o600);
    });
    this.queued = write;
    this.chain = write.catch(() => undefined);
    return write;
  }

  async get(name: string): Promise<string | undefined> {
    return (await this.load()).get(name);
  }

  async put(name: string, value: string): Promise<void> {
    const values = await this.load();
    values.set(name, value);
    await this.persist(values);
  }

  async delete(name: string): Promise<void> {
    const values = await this.load();
    if (!values.delete(name)) return;
    await this.persist(values);
  }

  async list(): Promise<string[]> {
    return [...(await this.load()).keys()].sort();
  }
}
