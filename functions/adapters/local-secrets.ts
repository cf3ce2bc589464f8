import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Secrets } from '../ports/secrets.js';

/**
 * Secrets for the embedded runtime: a JSON file readable by its owner only, in the data folder
 * (or memory with --memory). On AWS and emulators the SSM adapter takes this place.
 */
export class LocalSecrets implements Secrets {
  private cache?: Record<string, string>;

  constructor(private readonly file?: string) {}

  private async load(): Promise<Record<string, string>> {
    if (this.cache) return this.cache;
    this.cache = {};
    if (this.file) {
      try {
        this.cache = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, string>;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return this.cache;
  }

  private async save(): Promise<void> {
    if (!this.file || !this.cache) return;
    await mkdir(dirname(this.file), { recursive: true });
    await writeFile(this.file, JSON.stringify(this.cache), { mode: 0o600 });
    await chmod(this.file, 0o600);
  }

  async get(name: string): Promise<string | undefined> {
    return (await this.load())[name];
  }

  async put(name: string, value: string): Promise<void> {
    (await this.load())[name] = value;
    await this.save();
  }

  async delete(name: string): Promise<void> {
    delete (await this.load())[name];
    await this.save();
  }

  async list(): Promise<string[]> {
    return Object.keys(await this.load()).sort();
  }
}
