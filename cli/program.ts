/** The `fleet` program: its global options, and what every command uses to reach the control plane. */
import { Command as Program, InvalidArgumentError, Option } from 'commander';
import type * as z from 'zod';
import { Client, makeUi } from './client.js';
import { resolveTarget } from './config.js';
import { CliError, EXIT } from './errors.js';

declare const FLEET_CLI_VERSION: string;
const VERSION = typeof FLEET_CLI_VERSION === 'string' ? FLEET_CLI_VERSION : 'dev';

export interface Globals {
  url?: string;
  apiKey?: string;
  wsUrl?: string;
  json?: boolean;
  timeout: number;
}

export const program = new Program('fleet')
  .description('The GPU fleet from the terminal: nodes, containers, training jobs, tasks and cloud GPUs.')
  .version(VERSION)
  .option('--url <url>', 'control plane URL (default: FLEET_URL, the login file, http://127.0.0.1:8000)')
  .option('--api-key <key>', 'API key (default: FLEET_API_KEY, the login file)')
  .option('--json', 'print the API’s JSON document instead of a table')
  .option(
    '--ws-url <url>',
    'WebSocket API URL for -f (default: FLEET_WS_URL, the console’s config.json, the control plane’s /ws)',
  )
  .addOption(
    new Option('--timeout <seconds>', 'how long to follow pending commands, tasks and runs')
      .default(120)
      .argParser(positiveInt),
  )
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 error, 2 bad arguments or refused request shape (400/422), 3 control plane
unreachable, 4 no or refused API key (401/403), 5 not found (404), 6 conflict (409), 7 still
pending at --timeout, 8 the command, task or run failed.`,
  );

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number ≥ 0');
  return n;
}

export function checked<T>(schema: z.ZodType<T>, what: string) {
  return (v: string): T => {
    const r = schema.safeParse(v);
    if (!r.success) throw new InvalidArgumentError(`${what}: ${r.error.issues[0]?.message ?? 'invalid'}`);
    return r.data;
  };
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function keyValues(list: readonly string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`${what} must be KEY=VALUE: ${kv}`, EXIT.usage);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export async function session() {
  const g = program.opts<Globals>();
  const target = await resolveTarget({
    ...(g.url ? { url: g.url } : {}),
    ...(g.apiKey ? { apiKey: g.apiKey } : {}),
  });
  const ui = makeUi(!!g.json);
  const wsUrl = g.wsUrl ?? process.env['FLEET_WS_URL'];
  return {
    client: new Client(target, ui),
    json: !!g.json,
    timeoutMs: g.timeout * 1000,
    ...(wsUrl ? { wsUrl } : {}),
  };
}

export const enc = encodeURIComponent;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
