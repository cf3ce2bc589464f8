/**
 * The agent's process driver (agent/engine/process.ts) on this host: real process groups, their
 * logs, exit codes, env, stop as a group, the memory limit, and a refusal for what a process node
 * cannot run. No container engine is involved.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSpec, type ContainerSpec } from '../../../protocol/commands.js';
import {
  ProcessDriverRefusal,
  ProcessEngine,
  gpuVisible,
  hostPathOf,
} from '../../../agent/engine/process.js';
import { DiskLimitUnsupportedError } from '../../../agent/engine/errors.js';
import type { EngineEvent } from '../../../agent/engine/types.js';
import { createLogger } from '../../../agent/log.js';

const spec = (over: Partial<ContainerSpec> & { instanceId: string }): ContainerSpec =>
  containerSpec.parse({ imageId: 'ignored:latest', name: over.instanceId, kind: 'run', ...over });

/** A process that is not gone nor a zombie waiting to be reaped. */
const alive = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
};

describe('process driver', () => {
  let root: string;
  let engine: ProcessEngine;
  const events: EngineEvent[] = [];
  const watch = new AbortController();

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'process-driver-'));
    engine = new ProcessEngine({
      nodeName: 'proc-node',
      root: join(root, 'processes'),
      logger: createLogger({ level: 'error' }),
      watchMs: 100,
    });
    await engine.ping();
    void engine.watchEvents((e) => events.push(e), watch.signal);
  });

  afterAll(async () => {
    for (const c of await engine.list()) await engine.remove(c.id, true);
    watch.abort();
    await rm(root, { recursive: true, force: true });
  });

  it('runs a command as a process group: exit code, both streams, env with the volume’s host path', async () => {
    const hostDir = join(root, 'ckpt', 'job-1');
    const c = await engine.createAndStart(
      spec({
        instanceId: 'run-1',
        command: [
          'sh',
          '-c',
          'echo "dir=$CHECKPOINT_DIR"; echo step > "$CHECKPOINT_DIR/step"; echo oops >&2; exit 7',
        ],
        env: { CHECKPOINT_DIR: '/ckpt', OTHER: '/ckpt/sub' },
        volumes: [{ hostPath: hostDir, containerPath: '/ckpt', readOnly: false }],
        labels: { 'fleet.job': 'job-1' },
      }),
      { commandId: 'cmd-1' },
    );
    expect(c).toMatchObject({ instanceId: 'run-1', kind: 'run', imageId: 'ignored:latest' });
    expect(c.labels).toMatchObject({
      'fleet.managed': 'true',
      'fleet.node': 'proc-node',
      'fleet.instance': 'run-1',
      'fleet.command': 'cmd-1',
      'fleet.job': 'job-1',
    });
    expect(await engine.wait(c.id)).toEqual({ exitCode: 7 });
    const after = await engine.inspect(c.id);
    expect(after).toMatchObject({ state: 'exited', running: false, exitCode: 7 });
    expect(after.finishedAt).toEqual(expect.any(String));
    expect(await readFile(join(hostDir, 'step'), 'utf8')).toBe('step\n');
    expect(await engine.logTail(c.id, 10)).toEqual({
      stdout: `dir=${hostDir}`,
      stderr: 'oops',
      text: `dir=${hostDir}\noops`,
    });
    expect(events.filter((e) => e.containerId === c.id)).toEqual([
      { action: 'die', containerId: c.id, exitCode: 7, labels: after.labels },
    ]);
    expect((await engine.findByInstance('run-1'))?.id).toBe(c.id);
  });

  it('stop ends the whole group, children included, with the command’s own status', async () => {
    const c = await engine.createAndStart(
      spec({
        instanceId: 'run-2',
        command: [
          'sh',
          '-c',
          'sleep 300 & echo $! > child.pid; trap "exit 0" TERM; while true; do sleep 1; done',
        ],
      }),
    );
    expect(c.running).toBe(true);
    const childPid = await (async () => {
      for (;;) {
        const text = await readFile(join(root, 'processes', c.id, 'work', 'child.pid'), 'utf8').catch(
          () => '',
        );
        if (text.trim()) return Number(text);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    expect(await alive(childPid)).toBe(true);
    await engine.stop(c.id, 5);
    const after = await engine.inspect(c.id);
    expect(after).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(await alive(childPid)).toBe(false);

    await engine.start(c.id);
    expect(await engine.inspect(c.id)).toMatchObject({ state: 'running', restartCount: 1 });
    await engine.remove(c.id, true);
    expect(await engine.findByInstance('run-2')).toBeNull();
  });

  it('kills a group over its memory limit with 137, as the kernel’s OOM kill reports', async () => {
    const c = await engine.createAndStart(
      spec({
        instanceId: 'run-3',
        // tail keeps a line without a newline in memory: it grows until killed.
        command: ['sh', '-c', 'head -c 2000000000 /dev/zero | tail'],
        memoryLimitMb: 64,
      }),
    );
    expect(await engine.wait(c.id)).toEqual({ exitCode: 137 });
  }, 30_000);

  it('refuses what a process cannot do: no command, a disk limit, a remapped port', async () => {
    await expect(engine.createAndStart(spec({ instanceId: 'x1' }))).rejects.toBeInstanceOf(
      ProcessDriverRefusal,
    );
    await expect(
      engine.createAndStart(spec({ instanceId: 'x2', command: ['true'], diskLimitGb: 1 })),
    ).rejects.toBeInstanceOf(DiskLimitUnsupportedError);
    await expect(
      engine.createAndStart(
        spec({
          instanceId: 'x3',
          command: ['true'],
          ports: [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }],
        }),
      ),
    ).rejects.toBeInstanceOf(ProcessDriverRefusal);
    expect((await engine.list()).filter((c) => c.instanceId.startsWith('x'))).toEqual([]);
  });

  it('maps GPU asks and volume paths', () => {
    expect(gpuVisible({ gpus: 2 })).toBe('0,1');
    expect(gpuVisible({ gpus: 'all' })).toBeNull();
    expect(gpuVisible({ gpuDeviceIds: ['GPU-abc', '3'] })).toBe('GPU-abc,3');
    const volumes = [{ hostPath: '/data/ckpt/j1', containerPath: '/checkpoints', readOnly: false }];
    expect(hostPathOf('/checkpoints', volumes)).toBe('/data/ckpt/j1');
    expect(hostPathOf('/checkpoints/last.pt', volumes)).toBe('/data/ckpt/j1/last.pt');
    expect(hostPathOf('/checkpointsX', volumes)).toBe('/checkpointsX');
  });

  it('an exit whose event never came is found when the record is next read (the exit file gives the code)', async () => {
    const c = await engine.createAndStart(
      spec({ instanceId: 'run-5', command: ['sh', '-c', 'sleep 0.3; exit 5'] }),
    );
    // What a lost SIGCHLD looks like to the driver: the child's exit event never fires.
    const child = (engine as unknown as { children: Map<string, NodeJS.EventEmitter> }).children.get(c.id)!;
    child.removeAllListeners('exit');
    const { pid } = JSON.parse(await readFile(join(root, 'processes', c.id, 'meta.json'), 'utf8')) as {
      pid: number;
    };
    // Gone, or a zombie nobody reaps: no event will say so.
    await expect.poll(() => alive(pid), { timeout: 10_000, interval: 50 }).toBe(false);
    expect(await engine.inspect(c.id)).toMatchObject({ state: 'exited', exitCode: 5, running: false });
    expect(events.filter((e) => e.containerId === c.id)).toEqual([
      expect.objectContaining({ action: 'die', exitCode: 5 }),
    ]);
  }, 30_000);

  it('a group started before a restart is found, followed and its exit code read from the wrapper', async () => {
    const c = await engine.createAndStart(
      spec({ instanceId: 'run-4', command: ['sh', '-c', 'sleep 1; exit 4'] }),
    );
    // A second driver over the same folder plays the restarted agent: the group is not its child.
    const restarted = new ProcessEngine({
      nodeName: 'proc-node',
      root: join(root, 'processes'),
      logger: createLogger({ level: 'error' }),
      watchMs: 100,
    });
    const seen = await restarted.findByInstance('run-4');
    expect(seen).toMatchObject({ id: c.id, running: true });
    expect(await restarted.wait(c.id)).toEqual({ exitCode: 4 });
    expect(await restarted.inspect(c.id)).toMatchObject({ state: 'exited', exitCode: 4 });
  }, 30_000);
});
