import type Docker from 'dockerode';
import type { ContainerSpec } from '../../protocol/commands.js';
import { LABELS } from '../../protocol/messages.js';
import type { Logger } from '../log.js';
import { DEFAULT_ENGINE_TIMEOUTS, engineCall, type EngineTimeouts, type LooseDocker } from './call.js';
import {
  buildCreateOptions,
  createOptionsFromInspect,
  memoryBytes,
  nanoCpus,
  toManagedContainer,
} from './create-options.js';
import { summarizeDiskUsage } from './disk.js';
import { readCapabilities } from './capabilities.js';
import {
  ContainerNotFoundError,
  DiskLimitUnsupportedError,
  EngineError,
  engineMessage,
  isNameConflict,
} from './errors.js';
import { watchEngineEvents } from './events.js';
import { DockerImages } from './images.js';
import { followContainerLogs, readLogTail } from './follow.js';
import type { LogTail } from './logs.js';
import { computeStats, type CpuSample, type RawStats } from './stats.js';
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

export interface DockerEngineOptions {
  nodeName: string;
  logger: Logger;
  /** A Jetson runs GPU containers with the nvidia runtime. */
  jetson?: boolean;
  timeouts?: Partial<EngineTimeouts>;
  /** Looks for the NVIDIA container hook on PATH (tests stub it). */
  hasNvidiaHook?: () => Promise<boolean>;
  /** Grace period when the update fallback stops a container to recreate it (Docker's default 10 s). */
  recreateStopSeconds?: number;
}

// Status codes with which engines say "this route does not exist here" (Podman 4.3 says 404).
const UPDATE_UNSUPPORTED = new Set([404, 405, 501]);

/** {@link EngineDriver} over dockerode, for Docker and Podman's Docker-compatible API. */
export class DockerEngine implements EngineDriver {
  private caps: Promise<EngineCapabilities> | null = null;
  private readonly timeouts: EngineTimeouts;
  private readonly cpuSamples = new Map<string, CpuSample>();
  private readonly log: Logger;
  private readonly images: DockerImages;
  /** dockerode accepts abortSignal on these at runtime; its typings do not say so. */
  private get loose(): LooseDocker {
    return this.docker as unknown as LooseDocker;
  }

  constructor(
    private readonly docker: Docker,
    private readonly options: DockerEngineOptions,
  ) {
    this.timeouts = { ...DEFAULT_ENGINE_TIMEOUTS, ...options.timeouts };
    this.log = options.logger.child({ component: 'engine' });
    this.images = new DockerImages(docker, this.timeouts, this.log);
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await engineCall('ping', this.timeouts.inspectMs, (s) => this.loose.ping({ abortSignal: s }), signal);
  }

  capabilities(): Promise<EngineCapabilities> {
    this.caps ??= readCapabilities(this.loose, this.timeouts, this.options, this.log).catch(
      (error: unknown) => {
        this.caps = null; // try again next time rather than cache a failure
        throw error;
      },
    );
    return this.caps;
  }

  ensureImage(ref: string): Promise<{ pulled: boolean }> {
    return this.images.ensureImage(ref);
  }

  async createAndStart(spec: ContainerSpec, options: StartOptions = {}): Promise<ManagedContainer> {
    const caps = await this.capabilities();
    const create = buildCreateOptions(spec, {
      nodeName: this.options.nodeName,
      gpuMode: caps.gpuMode,
      diskLimit: caps.diskLimit,
      ...options,
    });
    let container: Docker.Container;
    try {
      container = await this.createContainer(create, spec.diskLimitGb);
    } catch (error) {
      if (!isNameConflict(error)) throw error;
      // Name taken: ours for this instance (an earlier try died after create) is reused, anything else is refused.
      const existing = await this.inspectRaw(spec.name).catch(() => null);
      const labels = existing?.Config.Labels ?? {};
      if (
        !existing ||
        labels[LABELS.node] !== this.options.nodeName ||
        labels[LABELS.instance] !== spec.instanceId
      ) {
        throw new EngineError(
          'container.create',
          `container name ${spec.name} is already used by another container`,
          409,
          { cause: error },
        );
      }
      container = this.docker.getContainer(existing.Id);
    }
    try {
      await this.start(container.id);
    } catch (error) {
      // A container that cannot start (port taken, bad command) would block every retry by name.
      await this.remove(container.id, true).catch(() => undefined);
      throw error;
    }
    return this.inspect(container.id);
  }

  private async createContainer(
    create: Docker.ContainerCreateOptions,
    diskLimitGb?: number,
  ): Promise<Docker.Container> {
    try {
      return await engineCall('container.create', this.timeouts.createMs, (s) =>
        this.docker.createContainer({ ...create, abortSignal: s }),
      );
    } catch (error) {
      if (diskLimitGb !== undefined && /storage[- ]?opt|quota/i.test(engineMessage(error))) {
        throw new DiskLimitUnsupportedError(
          diskLimitGb,
          `the engine refused StorageOpt size: ${engineMessage(error)}`,
        );
      }
      throw error;
    }
  }

  private inspectRaw(id: string): Promise<Docker.ContainerInspectInfo> {
    return engineCall('container.inspect', this.timeouts.inspectMs, (s) =>
      this.docker.getContainer(id).inspect({ abortSignal: s }),
    );
  }

  async inspect(id: string): Promise<ManagedContainer> {
    return toManagedContainer(await this.inspectRaw(id));
  }

  async findByInstance(instanceId: string): Promise<ManagedContainer | null> {
    const matches = await this.listIds([`${LABELS.instance}=${instanceId}`]);
    const found = (await Promise.all(matches.map((id) => this.inspect(id).catch(() => null)))).filter(
      (c): c is ManagedContainer => c !== null,
    );
    if (found.length > 1)
      this.log.warn('several containers carry one instance id', { instanceId, ids: found.map((c) => c.id) });
    return found.find((c) => c.running) ?? found[0] ?? null;
  }

  private async listIds(extraLabels: string[] = []): Promise<string[]> {
    const filters = {
      label: [`${LABELS.managed}=true`, `${LABELS.node}=${this.options.nodeName}`, ...extraLabels],
    };
    const list = await engineCall('container.list', this.timeouts.inspectMs, (s) =>
      this.docker.listContainers({ all: true, filters, abortSignal: s }),
    );
    // Filter again: never touch a container without our labels, whatever the engine's filter did.
    return list
      .filter(
        (c) => c.Labels?.[LABELS.managed] === 'true' && c.Labels?.[LABELS.node] === this.options.nodeName,
      )
      .filter((c) =>
        extraLabels.every((l) => {
          const [k, v] = l.split('=');
          return c.Labels?.[k!] === v;
        }),
      )
      .map((c) => c.Id);
  }

  async list(): Promise<ManagedContainer[]> {
    const ids = await this.listIds();
    const all = await Promise.all(ids.map((id) => this.inspect(id).catch(() => null))); // removed meanwhile
    const live = new Set(ids);
    for (const id of this.cpuSamples.keys()) if (!live.has(id)) this.cpuSamples.delete(id);
    return all.filter((c): c is ManagedContainer => c !== null);
  }

  async start(id: string): Promise<void> {
    try {
      await engineCall('container.start', this.timeouts.startMs, (s) =>
        this.docker.getContainer(id).start({ abortSignal: s }),
      );
    } catch (error) {
      if ((error as EngineError).statusCode === 304) return; // already running
      throw error;
    }
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    try {
      await engineCall('container.stop', timeoutSeconds * 1000 + this.timeouts.stopExtraMs, (s) =>
        this.docker
          .getContainer(id)
          .stop({ t: timeoutSeconds, abortSignal: s } as Docker.ContainerStopOptions),
      );
    } catch (error) {
      if ((error as EngineError).statusCode === 304) return; // already stopped
      throw error;
    }
  }

  async remove(id: string, force: boolean): Promise<void> {
    try {
      await engineCall('container.remove', this.timeouts.removeMs, (s) =>
        // v: anonymous volumes go with the container; bind mounts are untouched.
        this.docker
          .getContainer(id)
          .remove({ force, v: true, abortSignal: s } as Docker.ContainerRemoveOptions),
      );
    } catch (error) {
      if (error instanceof ContainerNotFoundError) return;
      throw error;
    }
    this.cpuSamples.delete(id);
  }

  async logs(id: string, tail: number): Promise<string> {
    return (await this.logTail(id, tail)).text;
  }

  followLogs(id: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
    return followContainerLogs(this.docker, id, onLine, signal);
  }

  logTail(id: string, tail: number): Promise<LogTail> {
    return readLogTail(this.docker, id, tail, this.timeouts.logsMs);
  }

  async updateLimits(id: string, limits: ResourceLimits, options: StartOptions = {}): Promise<UpdateOutcome> {
    const info = await this.inspectRaw(id);
    // No engine changes a writable layer's size in place.
    if (limits.diskLimitGb === undefined) {
      const body: Record<string, number> = {};
      if (limits.cpuLimit !== undefined) body['NanoCpus'] = nanoCpus(limits.cpuLimit);
      if (limits.memoryLimitMb !== undefined) {
        body['Memory'] = memoryBytes(limits.memoryLimitMb);
        // Docker sets swap to 2×memory at create; keep that, or a larger Memory fails against the old swap.
        body['MemorySwap'] = body['Memory'] * 2;
      }
      if (Object.keys(body).length === 0) return { container: toManagedContainer(info), method: 'update' };
      try {
        await engineCall('container.update', this.timeouts.updateMs, (s) =>
          this.docker.getContainer(id).update({ ...body, abortSignal: s }),
        );
        return { container: await this.inspect(id), method: 'update' };
      } catch (error) {
        const status = (error as EngineError).statusCode;
        // The container was just inspected, so a 404 here means the route is missing, not the container.
        if (status === undefined || !UPDATE_UNSUPPORTED.has(status)) throw error;
        this.log.info('engine cannot update containers; recreating', { containerId: id, statusCode: status });
      }
    }
    return { container: await this.recreate(info, limits, options), method: 'recreate' };
  }

  /** Stop, remove, create with the same name, labels and settings but new limits; restore the old one on failure. */
  private async recreate(
    info: Docker.ContainerInspectInfo,
    limits: ResourceLimits,
    options: StartOptions,
  ): Promise<ManagedContainer> {
    const caps = await this.capabilities();
    const replacement = createOptionsFromInspect(info, limits, {
      diskLimit: caps.diskLimit,
      commandId: options.commandId,
    });
    const original = createOptionsFromInspect(
      info,
      {},
      { diskLimit: { supported: true, reason: 'unchanged' } },
    );
    const wasRunning = info.State.Running;
    if (wasRunning) await this.stop(info.Id, this.options.recreateStopSeconds ?? 10);
    await this.remove(info.Id, true);
    try {
      const created = await this.createContainer(replacement, limits.diskLimitGb);
      if (wasRunning) await this.start(created.id);
      return await this.inspect(created.id);
    } catch (error) {
      this.log.error('recreate failed; restoring the original container', { name: replacement.name, error });
      await this.remove(replacement.name!, true).catch(() => undefined);
      const restored = await this.createContainer(original);
      if (wasRunning) await this.start(restored.id);
      throw error;
    }
  }

  async stats(id: string): Promise<ContainerStats> {
    const raw = await engineCall('container.stats', this.timeouts.statsMs, (s) =>
      this.docker.getContainer(id).stats({ stream: false, abortSignal: s } as { stream: false }),
    );
    const { stats, sample } = computeStats(raw as RawStats, this.cpuSamples.get(id));
    if (sample) this.cpuSamples.set(id, sample);
    return stats;
  }

  async wait(id: string, signal?: AbortSignal): Promise<{ exitCode: number | null }> {
    // No deadline of its own: a training run may take days; the caller's signal ends the wait.
    const result = (await this.docker.getContainer(id).wait(signal ? { abortSignal: signal } : {})) as {
      StatusCode?: number;
    };
    return { exitCode: typeof result.StatusCode === 'number' ? result.StatusCode : null };
  }

  watchEvents(onEvent: (event: EngineEvent) => void, signal: AbortSignal): Promise<void> {
    return watchEngineEvents(
      this.docker,
      { nodeName: this.options.nodeName, openTimeoutMs: this.timeouts.inspectMs },
      onEvent,
      signal,
    );
  }

  pruneDanglingImages(): Promise<ImagePruneOutcome> {
    return this.images.pruneDanglingImages();
  }

  async diskUsage(): Promise<EngineDiskUsage> {
    return summarizeDiskUsage(
      await engineCall('system.df', this.timeouts.diskUsageMs, (s) => this.loose.df({ abortSignal: s })),
    );
  }

  buildImage(input: ImageBuildInput): Promise<{ imageId: string; log: string[] }> {
    return this.images.buildImage(input);
  }

  pushImage(
    ref: string,
    options: { insecure: boolean; timeoutMs: number },
  ): Promise<{ digest: string | null; log: string[] }> {
    return this.images.pushImage(ref, options);
  }
}
