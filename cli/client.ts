import ora, { type Ora } from 'ora';
import type { Target } from './config.js';
import { CliError, EXIT, exitFor } from './errors.js';

export interface Answer<T = unknown> {
  status: number;
  body: T;
}

/** A command as GET /commands/{command_id} shows it (functions/core/responses.ts commandOut). */
export interface Command {
  command_id: string;
  node_id: string;
  type: string;
  status: 'pending' | 'succeeded' | 'failed';
  output: unknown;
  error: string | null;
}

/** What a call that waits for agents answers once COMMAND_WAIT_MS has passed (functions/core/responses.ts). */
export interface Pending {
  status: 'pending';
  pending_commands: string[];
}

export const isPending = (a: Answer): a is Answer<Pending> =>
  a.status === 202 &&
  typeof a.body === 'object' &&
  a.body !== null &&
  Array.isArray((a.body as { pending_commands?: unknown }).pending_commands);

/** The message of an error body in any of the API's three shapes (FastAPI, training, Novita). */
export function errorMessage(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object') {
    const b = body as { detail?: unknown; error?: { message?: string } };
    if (typeof b.detail === 'string') return b.detail;
    if (Array.isArray(b.detail))
      return b.detail
        .map(
          (d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join('.') || 'body'}: ${d.msg}`,
        )
        .join('; ');
    if (b.error?.message) return b.error.message;
  }
  return JSON.stringify(body);
}

export interface Ui {
  /** --json: nothing but the JSON document on stdout, no spinner. */
  json: boolean;
  spinner(text: string): Ora;
}

export function makeUi(json: boolean): Ui {
  return {
    json,
    // A TTY gets a spinner; otherwise ora writes the text once as a progress line, on stderr.
    spinner: (text) => ora({ text, stream: process.stderr, isSilent: json }).start(),
  };
}

export class Client {
  constructor(
    readonly target: Target,
    readonly ui: Ui,
  ) {}

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    let res: Response;
    try {
      res = await fetch(`${this.target.url}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.target.apiKey ? { authorization: `Bearer ${this.target.apiKey}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(
        `cannot reach the control plane at ${this.target.url} (${why}).\n` +
          `Is it running (npm start)? Set FLEET_URL or run: fleet login --url <url>`,
        EXIT.unreachable,
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body: parsed as T };
  }

  /** A request that must succeed (2xx); anything else becomes a CliError with the API's own message. */
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const answer = await this.request<T>(method, path, body);
    if (answer.status >= 200 && answer.status < 300) return answer;
    let message = `${method} ${path}: ${answer.status} ${errorMessage(answer.body)}`;
    if (answer.status === 401)
      message += '\nSet FLEET_API_KEY or run: fleet login --url <url> --api-key <key>';
    throw new CliError(message, exitFor(answer.status));
  }

  /** GET that must succeed. */
  get<T = unknown>(path: string): Promise<T> {
    return this.ok<T>('GET', path).then((a) => a.body);
  }

  /**
   * Follows command ids until none is pending, with a spinner that counts them; throws a timeout
   * CliError (the commands may still finish) once `timeoutMs` passed.
   */
  async settle(ids: readonly string[], timeoutMs: number, what = 'agents'): Promise<Command[]> {
    const spinner = this.ui.spinner(`waiting for ${what}: ${ids.length} command(s) pending`);
    const deadline = Date.now() + timeoutMs;
    const done = new Map<string, Command>();
    try {
      for (;;) {
        for (const id of ids) {
          if (done.has(id)) continue;
          const c = await this.get<Command>(`/commands/${encodeURIComponent(id)}`);
          if (c.status !== 'pending') done.set(id, c);
        }
        const left = ids.length - done.size;
        if (left === 0) break;
        if (Date.now() >= deadline)
          throw new CliError(
            `${left} of ${ids.length} command(s) still pending after ${Math.round(timeoutMs / 1000)} s: ` +
              ids.filter((id) => !done.has(id)).join(', '),
            EXIT.timeout,
          );
        spinner.text = `waiting for ${what}: ${left} of ${ids.length} command(s) pending`;
        await new Promise((r) => setTimeout(r, 500));
      }
      const failed = [...done.values()].filter((c) => c.status === 'failed');
      if (failed.length) spinner.fail(`${failed.length} of ${ids.length} command(s) failed`);
      else spinner.succeed(`${ids.length} command(s) done`);
      return ids.map((id) => done.get(id)!);
    } catch (error) {
      spinner.stop();
      throw error;
    }
  }

  /**
   * A call that may wait for agents: a spinner while the control plane waits, then, on a 202,
   * the pending commands followed to their end. Returns the settled body, or the commands.
   */
  async act<T = unknown>(
    method: string,
    path: string,
    body: unknown,
    opts: { text: string; timeoutMs: number },
  ): Promise<{ body?: T; commands?: Command[]; status: number }> {
    const spinner = this.ui.spinner(opts.text);
    let answer: Answer<T>;
    try {
      answer = await this.ok<T>(method, path, body);
    } finally {
      spinner.stop();
    }
    if (isPending(answer as Answer)) {
      const ids = (answer.body as unknown as Pending).pending_commands;
      const commands = await this.settle(ids, opts.timeoutMs);
      return { status: answer.status, commands, body: answer.body };
    }
    return { status: answer.status, body: answer.body };
  }
}

/** Exit code 8 with the agents' errors when any command failed. */
export function assertCommands(commands: readonly Command[] | undefined): void {
  const failed = (commands ?? []).filter((c) => c.status === 'failed');
  if (failed.length)
    throw new CliError(
      failed.map((c) => `command ${c.command_id} (${c.type} on ${c.node_id}) failed: ${c.error}`).join('\n'),
      EXIT.failed,
    );
}
