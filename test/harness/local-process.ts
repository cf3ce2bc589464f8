import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * `npm start` (local/main.ts) as a child process on a free port with its state in `dataDir`,
 * resolved once it prints the URL it listens on. Its pipes keep draining so it never blocks.
 */
export async function startLocalProcess(
  dataDir: string,
  env: Record<string, string | undefined>,
  /** A fixed port (a restart on the same data keeps its agents' URL); default: a free one. */
  port = 0,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'local/main.ts', '--data-dir', dataDir, '--port', String(port), '--no-agent'],
    { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`npm start exited ${code} before listening:\n${out}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, url };
}

/** SIGKILLs such a process and waits until it is gone; nothing when it already is. */
export async function killLocalProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
