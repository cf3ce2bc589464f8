import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerSpec } from '../../protocol/commands.js';
import { LABELS } from '../../protocol/messages.js';
import { writeFileAtomic } from '../state.js';
import { ContainerNotFoundError, DiskLimitUnsupportedError } from './errors.js';
import type { LogTail } from './logs.js';
import type { ManagedContainer, StartOptions } from './types.js';

/**
 * A process driver's "container" as a record: what a start spec becomes (its environment, its
 * labels, what the driver refuses), and its folder under the driver's root (meta.json, the two
 * log files, the exit code the wrapper writes).
 */

/** Raised for what a process node cannot run (no command, a remapped port): a refusal, not a dead copy. */
export class ProcessDriverRefusal extends Error {
  override name = 'ProcessDriverRefusal';
}

export interface ProcessMeta {
  id: string;
  name: string;
  instanceId: string;
  kind: ContainerSpec['kind'];
  imageId: string;
  labels: Record<string, string>;
  spec: ContainerSpec;
  env: Record<string, string>;
  cwd: string;
  state: 'created' | 'running' | 'exited';
  pid: number | null;
  /** /proc/<pid>/stat start time, so a reused pid is never taken for ours. */
  startTicks: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  restartCount: number;
  memoryLimitMb: number | null;
  cpuLimit: number | null;
  oomKilled?: boolean;
}

export const NO_DISK_QUOTA = 'the process driver has no per-process disk quota';
const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'LD_LIBRARY_PATH'];

/** What a process node cannot run, refused before anything is written. */
export function checkRunnable(spec: ContainerSpec): void {
  if (!spec.command?.length) {
    throw new ProcessDriverRefusal(
      `this node runs processes (no container engine): the start of ${spec.imageId} gives no command`,
    );
  }
  if (spec.diskLimitGb !== undefined) throw new DiskLimitUnsupportedError(spec.diskLimitGb, NO_DISK_QUOTA);
  const remapped = spec.ports.find((p) => p.hostPort !== 0 && p.hostPort !== p.containerPort);
  if (remapped) {
    throw new ProcessDriverRefusal(
      `a process cannot have port ${remapped.containerPort} published as ${remapped.hostPort}`,
    );
  }
}

/** The new record of a start: the agent's base environment, volumes as their host folders, the GPUs asked. */
export function newMeta(
  spec: ContainerSpec,
  at: { id: string; cwd: string; nodeName: string },
  options: StartOptions,
): ProcessMeta {
  const env: Record<string, string> = {};
  for (const k of BASE_ENV) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  for (const [k, v] of Object.entries(spec.env)) env[k] = hostPathOf(v, spec.volumes);
  const gpus = gpuVisible(spec);
  if (gpus !== null) env['CUDA_VISIBLE_DEVICES'] = env['NVIDIA_VISIBLE_DEVICES'] = gpus;
  return {
    id: at.id,
    name: spec.name,
    instanceId: spec.instanceId,
    kind: spec.kind,
    imageId: spec.imageId,
    labels: {
      ...spec.labels,
      [LABELS.managed]: 'true',
      [LABELS.node]: at.nodeName,
      [LABELS.instance]: spec.instanceId,
      [LABELS.image]: spec.imageId,
      [LABELS.kind]: spec.kind,
      ...(options.commandId ? { [LABELS.command]: options.commandId } : {}),
      ...(options.model ? { [LABELS.model]: options.model } : {}),
    },
    spec,
    env,
    cwd: at.cwd,
    state: 'created',
    pid: null,
    startTicks: null,
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    restartCount: 0,
    memoryLimitMb: spec.memoryLimitMb ?? null,
    cpuLimit: spec.cpuLimit ?? null,
  };
}

export function toManaged(meta: ProcessMeta): ManagedContainer {
  return {
    id: meta.id,
    name: meta.name,
    instanceId: meta.instanceId,
    kind: meta.kind,
    imageId: meta.imageId,
    state: meta.state,
    running: meta.state === 'running',
    exitCode: meta.exitCode,
    startedAt: meta.startedAt,
    finishedAt: meta.finishedAt,
    restartCount: meta.restartCount,
    ports: meta.spec.ports.map((p) => ({
      containerPort: p.containerPort,
      hostPort: p.containerPort,
      protocol: p.protocol,
    })),
    labels: meta.labels,
  };
}

/** An env value naming a volume's container path (or a path below it) gets the host path. */
export function hostPathOf(value: string, volumes: ContainerSpec['volumes']): string {
  for (const v of volumes) {
    const at = v.containerPath.replace(/\/+$/, '');
    if (value === at || value === `${at}/`) return v.hostPath;
    if (value.startsWith(`${at}/`)) return `${v.hostPath.replace(/\/+$/, '')}${value.slice(at.length)}`;
  }
  return value;
}

/** CUDA_VISIBLE_DEVICES for the ask; null leaves the host's GPUs as they are. */
export function gpuVisible(spec: Pick<ContainerSpec, 'gpus' | 'gpuDeviceIds'>): string | null {
  if (spec.gpuDeviceIds?.length) return spec.gpuDeviceIds.join(',');
  if (spec.gpus === undefined || spec.gpus === 'all') return null;
  return Array.from({ length: spec.gpus }, (_, i) => String(i)).join(',');
}

/** The records' folders under the driver's root: one per process. */
export class ProcessRecords {
  constructor(private readonly root: string) {}

  dir(id: string): string {
    if (!/^proc-[0-9a-f]{32}$/.test(id))
      throw new ContainerNotFoundError('process.inspect', `no process ${id}`, 404);
    return join(this.root, id);
  }

  async load(id: string): Promise<ProcessMeta> {
    try {
      return JSON.parse(await readFile(join(this.dir(id), 'meta.json'), 'utf8')) as ProcessMeta;
    } catch (error) {
      if (error instanceof ContainerNotFoundError) throw error;
      throw new ContainerNotFoundError('process.inspect', `no process ${id}`, 404, { cause: error });
    }
  }

  save(meta: ProcessMeta): Promise<void> {
    return writeFileAtomic(join(this.dir(meta.id), 'meta.json'), JSON.stringify(meta));
  }

  /** The code the wrapper wrote, if it did. */
  async writtenExit(id: string): Promise<number | null> {
    const written = await readFile(join(this.dir(id), 'exit'), 'utf8').catch(() => '');
    return /^\d+\s*$/.test(written) ? Number(written) : null;
  }

  /** No stamps on a process's lines: each stream's tail, stdout then stderr. */
  async logTail(id: string, tail: number): Promise<LogTail> {
    await this.load(id);
    const read = async (name: string) => lastLines(await readTail(join(this.dir(id), name)), tail);
    const [stdout, stderr] = await Promise.all([read('stdout.log'), read('stderr.log')]);
    const text = lastLines([stdout, stderr].filter(Boolean).join('\n'), tail);
    return { text, stdout, stderr };
  }
}

const TAIL_BYTES = 256 * 1024;

async function readTail(path: string): Promise<string> {
  const size = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  if (size === 0) return '';
  const handle = await open(path, 'r');
  try {
    const length = Math.min(size, TAIL_BYTES);
    const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

function lastLines(text: string, n: number): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return text ? lines.slice(-n).join('\n') : '';
}
