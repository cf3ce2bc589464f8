import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import * as z from 'zod';

/** What `fleet login` keeps: the control plane's URL and, when auth is on, an API key. */
const savedSchema = z.object({ url: z.string().url(), apiKey: z.string().min(1).optional() });
export type Saved = z.infer<typeof savedSchema>;

export interface Target {
  url: string;
  apiKey?: string;
  /** Where the URL came from, for error messages. */
  source: 'flag' | 'env' | 'file' | 'default';
}

export const DEFAULT_URL = 'http://127.0.0.1:8000';

/** `$XDG_CONFIG_HOME/fleet/config.json`, else `~/.config/fleet/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'fleet', 'config.json');
}

export async function readSaved(path = configPath()): Promise<Saved | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = savedSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${path} is not a fleet login file: run fleet login again`);
  return parsed.data;
}

/** Written 0600 through a temporary file, so a crash never leaves half a key behind. */
export async function writeSaved(saved: Saved, path = configPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Flag > FLEET_URL / FLEET_API_KEY > the login file > http://127.0.0.1:8000, as the agent reads them. */
export async function resolveTarget(
  flags: { url?: string; apiKey?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Target> {
  const saved = await readSaved(configPath(env));
  const url = flags.url ?? env['FLEET_URL'] ?? saved?.url;
  const apiKey = flags.apiKey ?? env['FLEET_API_KEY'] ?? saved?.apiKey;
  const source = flags.url ? 'flag' : env['FLEET_URL'] ? 'env' : saved?.url ? 'file' : 'default';
  return { url: (url ?? DEFAULT_URL).replace(/\/+$/, ''), ...(apiKey ? { apiKey } : {}), source };
}
