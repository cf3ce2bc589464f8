import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerSpec } from '../../protocol/commands.js';
import type { Logger } from '../log.js';
import { DiskLimitUnsupportedError, EngineError } from './errors.js';
import { alive, groupUsage, killGroup, signalNumber, startTicks, usageStats } from './process-host.js';
import {
  checkRunnable,
  newMeta,
  NO_DISK_QUOTA,
  ProcessRecords,
  toManaged,
  type ProcessMeta,
} from './process-record.js';
import type { LogTail } from './logs.js';
import { spawnGroup } from './process-spawn.js';
import type {
  ContainerStats,
  EngineCapabilities,
  EngineDiskUsage,
  EngineDriver,
  EngineEvent,
  ImageBuildInput,
  ImagePruneOutcome,
  ManagedContainer,
  ResourceLimits,
  StartOptions,
  UpdateOutcome,
} from './types.js';

export { gpuVisible, hostPathOf, ProcessDriverRefusal } from './process-record.js';

/**
 * The process driver (Nomad's `exec`, reduced): for hosts without a container engine, such as a
 * rented cloud instance that is itself a container. A "container" here is a process group: the
 * spec's `command` run detached (its own session, so the group is killed as one), stdout and
 * stderr in files under the state folder, its exit code written by a small sh wrapper so an exit
 * while the agent was down is still known. The image is not used.
 *
 * Limits: memory is enforced by the agent (the group's resident memory summed from /proc, the
 * group killed with SIGKILL past it, exit 137 as the kernel's OOM kill gives); CPU is booked by
 * placement only; a disk limit is refused. GPUs: CUDA_VISIBLE_DEVICES from the ask. Volumes are
 * the host folders themselves: env values naming a volume's container path get its host path.
 * Ports cannot be remapped: a port is published on its own number. The record of a process and
 * what a start becomes: process-record.ts; what is read of /proc: process-host.ts; the spawn
 * under its exit-code wrapper: process-spawn.ts.
 */

export interface ProcessEngineOptions {
  nodeName: string;
  /** Folder holding one sub-folder per process (meta, logs, exit code). */
  root: string;
  logger: Logger;
  /** Whether the host has GPUs the processes can use. */
  gpuCount?: number;
  /** How often running groups are checked (memory limit, exits of groups started before a restart). */
  watchMs?: number;
}

/** How long a dead child's own exit event is awaited before its record is finished without it. */
const EXIT_EVENT_GRACE_MS = 500;

export class ProcessEngine implements EngineDriver {
  private readonly log: Logger;
  private readonly children = new Map<string, ChildProcess>();
  private readonly exits = new EventEmitter();
  private readonly cpuSamples = new Map<string, { ticks: number; at: number }>();
  private watchTimer: NodeJS.Timeout | null = null;
  /** Running groups that are not our children (started before a restart): their exits are polled. */
  private readonly following = new Set<string>();

  private readonly records: ProcessRecords;

  constructor(private readonly options: ProcessEngineOptions) {
    this.log = options.logger.child({ component: 'process-driver' });
    this.records = new ProcessRecords(options.root);
    this.exits.setMaxListeners(0);
  }

  async ping(): Promise<void> {
    await mkdir(this.options.root, { recursive: true, mode: 0o700 });
  }

  async capabilities(): Promise<EngineCapabilities> {
    const gpus = (this.options.gpuCount ?? 0) > 0;
    return {
      name: 'process',
      version: process.version,
      apiVersion: '1',
      storageDriver: 'none',
      backingFilesystem: null,
      diskLimit: { supported: false, reason: NO_DISK_QUOTA },
      gpuMode: 'none',
      gpuRuntime: gpus,
      runtimes: [],
      rootDir: this.options.root,
    };
  }

  async ensureImage(): Promise<{ pulled: boolean }> {
    return { pulled: false };
  }

  async createAndStart(spec: ContainerSpec, options: StartOptions = {}): Promise<ManagedContainer> {
    checkRunnable(spec);
    const existing = await this.findByInstance(spec.instanceId);
    if (existing) {
      if (existing.running) return existing;
      await this.remove(existing.id, true);
    }
    const id = `proc-${randomUUID().replaceAll('-', '')}`;
    const cwd = join(this.records.dir(id), 'work');
    await mkdir(cwd, { recursive: true, mode: 0o700 });
    for (const v of spec.volumes) await mkdir(v.hostPath, { recursive: true });
    await this.save(newMeta(spec, { id, cwd, nodeName: this.options.nodeName }, options));
    await this.start(id);
    return this.inspect(id);
  }

  async findByInstance(instanceId: string): Promise<ManagedContainer | null> {
    const all = await this.list();
    return all.find((c) => c.instanceId === instanceId) ?? null;
  }

  async inspect(id: string): Promise<ManagedContainer> {
    return toManaged(await this.refresh(await this.load(id)));
  }

  async start(id: string): Promise<void> {
    const meta = await this.refresh(await this.load(id));
    if (meta.state === 'running') return;
    // Listened to at once: a command may end before the record below is written.
    const { child, exited } = await spawnGroup(this.dir(id), meta);
    child.unref();
    const pid = child.pid!;
    this.children.set(id, child);
    const started = meta.startedAt !== null;
    Object.assign(meta, {
      state: 'running',
      pid,
      startTicks: await startTicks(pid),
      startedAt: new Date().toISOString(),
      finishedAt: null,
      exitCode: null,
      oomKilled: false,
      restartCount: meta.restartCount + (started ? 1 : 0),
    });
    await this.save(meta);
    void exited.then(([code, signal]) => {
      this.children.delete(id);
      return this.finish(id, code ?? (signal ? 128 + signalNumber(signal) : null));
    });
    this.ensureWatch();
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    const meta = await this.refresh(await this.load(id));
    if (meta.state !== 'running' || meta.pid === null) return;
    const exited = this.waitExit(id);
    killGroup(meta.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(meta.pid!, 'SIGKILL'), Math.max(0, timeoutSeconds) * 1000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async remove(id: string, force: boolean): Promise<void> {
    const meta = await this.refresh(await this.load(id));
    if (meta.state === 'running') {
      if (!force) throw new EngineError('container.remove', `process ${id} is running; stop it first`, 409);
      await this.stop(id, 0);
    }
    await rm(this.dir(id), { recursive: true, force: true });
    this.cpuSamples.delete(id);
  }

  async logs(id: string, tail: number): Promise<string> {
    return (await this.logTail(id, tail)).text;
  }

  /** No stamps on a process's lines: each stream's tail, stdout then stderr. */
  logTail(id: string, tail: number): Promise<LogTail> {
    return this.records.logTail(id, tail);
  }

  async updateLimits(id: string, limits: ResourceLimits): Promise<UpdateOutcome> {
    if (limits.diskLimitGb !== undefined) {
      throw new DiskLimitUnsupportedError(limits.diskLimitGb, NO_DISK_QUOTA);
    }
    const meta = await this.load(id);
    if (limits.memoryLimitMb !== undefined) meta.memoryLimitMb = limits.memoryLimitMb;
    if (limits.cpuLimit !== undefined) meta.cpuLimit = limits.cpuLimit;
    await this.save(meta);
    return { container: await this.inspect(id), method: 'update' };
  }

  async list(): Promise<ManagedContainer[]> {
    let names: string[];
    try {
      names = await readdir(this.options.root);
    } catch {
      return [];
    }
    const out: ManagedContainer[] = [];
    for (const name of names.filter((n) => n.startsWith('proc-'))) {
      const meta = await this.load(name).catch(() => null);
      if (meta) out.push(toManaged(await this.refresh(meta)));
    }
    return out;
  }

  async stats(id: string): Promise<ContainerStats> {
    const meta = await this.load(id);
    const running = meta.state === 'running' && meta.pid !== null;
    const usage = running ? await groupUsage(meta.pid!) : null;
    const now = Date.now();
    const before = this.cpuSamples.get(id);
    if (usage) this.cpuSamples.set(id, { ticks: usage.cpuTicks, at: now });
    return usageStats(usage, before, now, meta.memoryLimitMb);
  }

  async wait(id: string, signal?: AbortSignal): Promise<{ exitCode: number | null }> {
    const exited = this.waitExit(id, signal);
    const meta = await this.refresh(await this.load(id));
    if (meta.state !== 'running') return { exitCode: meta.exitCode };
    return exited;
  }

  async watchEvents(onEvent: (event: EngineEvent) => void, signal: AbortSignal): Promise<void> {
    const listener = (event: EngineEvent) => onEvent(event);
    this.exits.on('die', listener);
    try {
      if (!signal.aborted) await once(signal, 'abort');
    } finally {
      this.exits.off('die', listener);
      if (this.exits.listenerCount('die') === 0 && this.watchTimer) {
        clearInterval(this.watchTimer);
        this.watchTimer = null;
      }
    }
  }

  async pruneDanglingImages(): Promise<ImagePruneOutcome> {
    return { imagesDeleted: [], spaceReclaimedBytes: 0 };
  }

  async diskUsage(): Promise<EngineDiskUsage> {
    const list = await this.list();
    const stopped = list.filter((c) => !c.running).length;
    return {
      layersSizeBytes: 0,
      images: { count: 0, sizeBytes: 0, reclaimableBytes: 0 },
      containers: { count: list.length, sizeBytes: 0, reclaimableBytes: stopped },
      volumes: { count: 0, sizeBytes: 0 },
      buildCacheBytes: 0,
    };
  }

  buildImage(input: ImageBuildInput): Promise<{ imageId: string; log: string[] }> {
    return Promise.reject(
      new EngineError('image.build', `this node has no container engine to build ${input.tag}`, 501),
    );
  }

  pushImage(ref: string): Promise<{ digest: string | null; log: string[] }> {
    return Promise.reject(
      new EngineError('image.push', `this node has no container engine to push ${ref}`, 501),
    );
  }

  // ------------------------------------------------------------ internals

  private dir(id: string): string {
    return this.records.dir(id);
  }

  private load(id: string): Promise<ProcessMeta> {
    return this.records.load(id);
  }

  private save(meta: ProcessMeta): Promise<void> {
    return this.records.save(meta);
  }

  private waitExit(id: string, signal?: AbortSignal): Promise<{ exitCode: number | null }> {
    return new Promise((resolve, reject) => {
      const onDie = (event: EngineEvent) => {
        if (event.containerId !== id) return;
        this.exits.off('die', onDie);
        resolve({ exitCode: event.exitCode });
      };
      this.exits.on('die', onDie);
      signal?.addEventListener('abort', () => {
        this.exits.off('die', onDie);
        reject(signal.reason as Error);
      });
    });
  }

  /**
   * A running record checked against /proc: a group started before the agent restarted is not our
   * child, and a child's exit event can be missed (seen under qemu-user on a loaded host), so a
   * leader that is gone or a zombie is finished here too; the wrapper's exit file gives its code.
   */
  private async refresh(meta: ProcessMeta): Promise<ProcessMeta> {
    if (meta.state !== 'running' || meta.pid === null) return meta;
    const ours = this.children.has(meta.id);
    if (await alive(meta.pid, meta.startTicks)) {
      if (!ours) {
        this.following.add(meta.id);
        this.ensureWatch();
      }
      return meta;
    }
    // Our child just died: its exit event, with the signal that killed it, normally follows at once.
    if (ours) await new Promise((resolve) => setTimeout(resolve, EXIT_EVENT_GRACE_MS));
    return (await this.finish(meta.id, null)) ?? meta;
  }

  private finishing = new Map<string, Promise<ProcessMeta | null>>();

  /** Records the exit once (the wrapper's exit file wins over what the agent saw) and announces it. */
  private finish(id: string, observed: number | null): Promise<ProcessMeta | null> {
    const inFlight = this.finishing.get(id);
    if (inFlight) return inFlight;
    const done = (async () => {
      const meta = await this.load(id).catch(() => null);
      if (!meta || meta.state !== 'running') return meta;
      const code = (await this.records.writtenExit(id)) ?? observed;
      // The group may outlive its leader (a daemonised child): it goes with it.
      if (meta.pid !== null) killGroup(meta.pid, 'SIGKILL');
      Object.assign(meta, {
        state: 'exited',
        exitCode: meta.oomKilled ? 137 : code,
        finishedAt: new Date().toISOString(),
      });
      await this.save(meta);
      this.following.delete(id);
      this.exits.emit('die', {
        action: 'die',
        containerId: id,
        exitCode: meta.exitCode,
        labels: meta.labels,
      } satisfies EngineEvent);
      return meta;
    })().finally(() => this.finishing.delete(id));
    this.finishing.set(id, done);
    return done;
  }

  private ensureWatch(): void {
    if (this.watchTimer) return;
    this.watchTimer = setInterval(() => void this.check(), this.options.watchMs ?? 1_000);
    this.watchTimer.unref();
  }

  /** The memory limit, and exits of groups that are not our children. */
  private async check(): Promise<void> {
    let running = 0;
    for (const c of await this.list().catch(() => [])) {
      if (!c.running && this.following.delete(c.id)) {
        // Ended behind our back (another reader recorded it first): still news to our waiters.
        this.exits.emit('die', { action: 'die', containerId: c.id, exitCode: c.exitCode, labels: c.labels });
      }
      if (!c.running) continue;
      running++;
      const meta = await this.load(c.id).catch(() => null);
      if (!meta?.memoryLimitMb || meta.pid === null) continue;
      const usage = await groupUsage(meta.pid);
      if (usage.rssBytes > meta.memoryLimitMb * 1024 * 1024) {
        this.log.warn('process group over its memory limit; killed', {
          instanceId: meta.instanceId,
          rssMb: Math.round(usage.rssBytes / 1024 / 1024),
          limitMb: meta.memoryLimitMb,
        });
        meta.oomKilled = true;
        await this.save(meta);
        killGroup(meta.pid, 'SIGKILL');
      }
    }
    if (running === 0 && this.watchTimer && this.exits.listenerCount('die') === 0) {
      clearInterval(this.watchTimer);
      this.watchTimer = null;
    }
  }
}
