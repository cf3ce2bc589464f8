/**
 * A moto server of the suite's own, for checks that turn on moto's IAM enforcement: the shared
 * emulator at AWS_ENDPOINT_URL must never have it on (every other suite would be refused).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { eventually, REPO_ROOT } from '../e2e/harness.js';
import { inCi, type ServiceStatus } from './services.js';

export const MOTO_SERVER = join(REPO_ROOT, '.venv-aws', 'bin', 'moto_server');

/** moto's server from .venv-aws (.ci/run installs it). Throws under CI when it is missing. */
export function requireMotoServer(): ServiceStatus {
  if (existsSync(MOTO_SERVER)) return { available: true, reason: '' };
  const reason = `${MOTO_SERVER} is missing (python3 -m venv .venv-aws && .venv-aws/bin/pip install 'moto[server]')`;
  if (inCi) throw new Error(`CI=true and ${reason}. CI must run these suites, not skip them.`);
  return { available: false, reason };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class OwnMoto {
  private child: ChildProcess | undefined;
  readonly output: string[] = [];
  url = '';

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.on('data', (chunk: Buffer) => {
        this.output.push(chunk.toString());
        if (this.output.length > 200) this.output.shift();
      });
    }
    await eventually(
      `moto at ${this.url}`,
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`moto exited:\n${this.output.join('')}`);
        const res = await fetch(`${this.url}/moto-api/data.json`, { signal: AbortSignal.timeout(2_000) });
        if (!res.ok) throw new Error(`moto answered ${res.status}`);
      },
      30_000,
    );
  }

  /** On: every later call is checked against the caller's IAM policies. Off: anything goes. */
  async enforceIam(on: boolean): Promise<void> {
    const res = await fetch(`${this.url}/moto-api/reset-auth`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: on ? '0' : 'inf',
    });
    if (!res.ok) throw new Error(`reset-auth answered ${res.status}: ${await res.text()}`);
  }

  /** moto's state, as its /moto-api/data.json lists it (models by service). */
  async data(): Promise<Record<string, Record<string, Record<string, unknown>[]>>> {
    const res = await fetch(`${this.url}/moto-api/data.json`);
    return (await res.json()) as Record<string, Record<string, Record<string, unknown>[]>>;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}
