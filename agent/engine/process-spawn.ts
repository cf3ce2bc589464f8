import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from './errors.js';
import type { ProcessMeta } from './process-record.js';

// $1: the exit file. A trapped TERM/INT/HUP waits for the command, so its own status is recorded.
const WRAPPER = 'f=$1; shift; trap : TERM INT HUP; "$@"; echo $? > "$f"';

/**
 * Starts a process driver "container" (process.ts): the spec's command under a small sh wrapper
 * that writes its exit code to `<dir>/exit`, detached in its own session (the group is killed as
 * one), stdout and stderr appended to files in `dir`. `exited` is listened to before this returns:
 * a command may end before its caller has written its record.
 */
export async function spawnGroup(
  dir: string,
  meta: ProcessMeta,
): Promise<{ child: ChildProcess; exited: Promise<[number | null, NodeJS.Signals | null]> }> {
  const exitFile = join(dir, 'exit');
  await rm(exitFile, { force: true });
  const out = await open(join(dir, 'stdout.log'), 'a', 0o600);
  const err = await open(join(dir, 'stderr.log'), 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', WRAPPER, 'fleet-process', exitFile, ...meta.spec.command!], {
      cwd: meta.cwd,
      env: meta.env,
      detached: true,
      stdio: ['ignore', out.fd, err.fd],
    });
    await once(child, 'spawn');
  } catch (error) {
    throw new EngineError('process.start', `could not start ${meta.spec.command![0]}: ${String(error)}`);
  } finally {
    await out.close();
    await err.close();
  }
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited };
}
