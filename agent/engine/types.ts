import type { ContainerSpec } from '../../protocol/commands.js';
import type { LogTail } from './logs.js';

export type { LogTail } from './logs.js';

/**
 * The container engine behind a small driver interface (Nomad's task driver, reduced): the
 * executor, heartbeat, watcher and task runner speak only {@link EngineDriver}; `DockerEngine`
 * (docker.ts) implements it over dockerode for Docker and Podman's Docker-compatible API.
 */

export type ContainerKind = ContainerSpec['kind'];

export interface PortMapping {
  containerPort: number;
  hostPort: number;
  protocol: string;
}

export interface ManagedContainer {
  id: string;
  name: string;
  instanceId: string;
  kind: ContainerKind;
  /** The image reference the container was created from (label fleet.image, else Config.Image). */
  imageId: string;
  /** Engine state: created, running, exited, dead, paused, restarting. */
  state: string;
  running: boolean;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  restartCount: number;
  ports: PortMapping[];
  labels: Record<string, string>;
}

export interface ContainerStats {
  cpuPercent: number | null;
  memoryUsageMb: number | null;
  memoryLimitMb: number | null;
  memoryPercent: number | null;
}

export interface ResourceLimits {
  cpuLimit?: number;
  memoryLimitMb?: number;
  diskLimitGb?: number;
}

export interface DiskLimitSupport {
  supported: boolean;
  /** What the engine reported, for the error a command fails with. */
  reason: string;
}

/** How a GPU request reaches the engine. */
export type GpuMode = 'device-requests' | 'nvidia-runtime' | 'none';

export interface EngineCapabilities {
  /** 'docker' or 'podman'. */
  name: string;
  version: string;
  apiVersion: string;
  storageDriver: string;
  backingFilesystem: string | null;
  diskLimit: DiskLimitSupport;
  gpuMode: GpuMode;
  /** Whether GPU requests can be honoured at all (RegisterRequest.engine.gpuRuntime). */
  gpuRuntime: boolean;
  /** OCI runtimes the engine lists (runc, nvidia...). */
  runtimes: string[];
  /** Where the engine keeps images and containers (DockerRootDir; Podman's graph root). */
  rootDir: string | null;
}

/** The engine's own disk accounting (`docker system df`), in bytes. */
export interface EngineDiskUsage {
  layersSizeBytes: number;
  images: { count: number; sizeBytes: number; reclaimableBytes: number };
  containers: { count: number; sizeBytes: number; reclaimableBytes: number };
  volumes: { count: number; sizeBytes: number };
  buildCacheBytes: number;
}

export interface ImagePruneOutcome {
  imagesDeleted: string[];
  spaceReclaimedBytes: number;
}

export interface EngineEvent {
  /** Docker's Action: die, start, stop, destroy, oom... */
  action: string;
  containerId: string;
  exitCode: number | null;
  labels: Record<string, string>;
}

export interface StartOptions {
  /** Recorded in label fleet.command. */
  commandId?: string;
  /** Recorded in label fleet.model (model servers). */
  model?: string;
}

export interface UpdateOutcome {
  container: ManagedContainer;
  /** 'update': changed in place; 'recreate': the engine cannot update, so a new container replaced it. */
  method: 'update' | 'recreate';
}

export interface EngineDriver {
  capabilities(): Promise<EngineCapabilities>;
  ping(signal?: AbortSignal): Promise<void>;
  /** Pulls only when the image is not already on the node. */
  ensureImage(ref: string): Promise<{ pulled: boolean }>;
  createAndStart(spec: ContainerSpec, options?: StartOptions): Promise<ManagedContainer>;
  findByInstance(instanceId: string): Promise<ManagedContainer | null>;
  inspect(id: string): Promise<ManagedContainer>;
  start(id: string): Promise<void>;
  stop(id: string, timeoutSeconds: number): Promise<void>;
  remove(id: string, force: boolean): Promise<void>;
  /** The last `tail` lines, both streams ordered by the engine's timestamps. */
  logs(id: string, tail: number): Promise<string>;
  /** The same, with each stream's own last lines apart (their interleaving is not always knowable). */
  logTail(id: string, tail: number): Promise<LogTail>;
  /** New output lines from now on, until the log ends or `signal` aborts; absent where the driver cannot follow. */
  followLogs?(id: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void>;
  updateLimits(id: string, limits: ResourceLimits, options?: StartOptions): Promise<UpdateOutcome>;
  /** Containers carrying fleet.managed=true and fleet.node=<this node>, stopped ones included. */
  list(): Promise<ManagedContainer[]>;
  stats(id: string): Promise<ContainerStats>;
  wait(id: string, signal?: AbortSignal): Promise<{ exitCode: number | null }>;
  /** Streams this node's managed container events until the stream ends or `signal` aborts. */
  watchEvents(onEvent: (event: EngineEvent) => void, signal: AbortSignal): Promise<void>;
  /** Removes dangling images (untagged and used by no container); nothing else. */
  pruneDanglingImages(): Promise<ImagePruneOutcome>;
  diskUsage(): Promise<EngineDiskUsage>;
  /** Builds a context folder (tarred as is, .dockerignore honoured) and tags the image `tag`. */
  buildImage(input: ImageBuildInput): Promise<{ imageId: string; log: string[] }>;
  /** Pushes `ref` to its registry; `insecure` lets Podman use plain HTTP. */
  pushImage(
    ref: string,
    options: { insecure: boolean; timeoutMs: number },
  ): Promise<{ digest: string | null; log: string[] }>;
}

export interface ImageBuildInput {
  contextDir: string;
  /** The Dockerfile, relative to contextDir. */
  dockerfile: string;
  tag: string;
  buildArgs: Record<string, string>;
  timeoutMs: number;
}
