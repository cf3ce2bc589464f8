import { access, constants, readdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type Docker from 'dockerode';
import { LABELS } from '../protocol/messages.js';
import { type ContainerSpec } from '../protocol/commands.js';
import type { Logger } from './log.js';

/**
 * The container engine behind a small driver interface (Nomad's task driver, reduced): the
 * executor, heartbeat, watcher and task runner speak only {@link EngineDriver}; {@link DockerEngine}
 * implements it over dockerode for Docker and Podman's Docker-compatible API.
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
  logs(id: string, tail: number): Promise<string>;
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
  pushImage(ref: string, options: { insecure: boolean; timeoutMs: number }): Promise<{ digest: string | null; log: string[] }>;
}

export interface ImageBuildInput {
  contextDir: string;
  /** The Dockerfile, relative to contextDir. */
  dockerfile: string;
  tag: string;
  buildArgs: Record<string, string>;
  timeoutMs: number;
}

// ---------------------------------------------------------------------------------------------
// Errors

export class EngineError extends Error {
  override name = 'EngineError';
  constructor(
    readonly op: string,
    message: string,
    readonly statusCode?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class EngineTimeoutError extends EngineError {
  override name = 'EngineTimeoutError';
}

export class ContainerNotFoundError extends EngineError {
  override name = 'ContainerNotFoundError';
}

/** A build or push the engine reported as failed, with the output it streamed up to there. */
export class ImageStreamError extends EngineError {
  override name = 'ImageStreamError';
  constructor(
    op: string,
    message: string,
    readonly log: string[],
    statusCode?: number,
  ) {
    super(op, message, statusCode);
  }
}

/** diskLimitGb was asked for and the engine cannot enforce it: the command fails rather than run unlimited. */
export class DiskLimitUnsupportedError extends Error {
  override name = 'DiskLimitUnsupportedError';
  constructor(
    readonly diskLimitGb: number,
    readonly reason: string,
  ) {
    super(
      `diskLimitGb=${diskLimitGb} cannot be enforced on this node: ${reason}. ` +
        'A container size limit needs overlay2 on xfs mounted with pquota, or btrfs, zfs or devicemapper; ' +
        'refusing to start the container without it.',
    );
  }
}

/** GPUs were asked for and the engine has no GPU runtime: the container would start without them. */
export class GpuUnsupportedError extends Error {
  override name = 'GpuUnsupportedError';
  constructor(
    readonly gpus: number | 'all',
    reason: string,
  ) {
    super(
      `gpus=${gpus} cannot be honoured on this node: ${reason}; refusing to start the container without GPUs.`,
    );
  }
}

export function statusCodeOf(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

// ---------------------------------------------------------------------------------------------
// Pure mappings (unit-tested)

export interface CreateContext {
  nodeName: string;
  gpuMode: GpuMode;
  diskLimit: DiskLimitSupport;
  commandId?: string;
  model?: string;
}

const MIB = 1024 * 1024;

/** `cpuLimit` in CPUs → NanoCpus (1 CPU = 1e9). */
export function nanoCpus(cpuLimit: number): number {
  return Math.round(cpuLimit * 1e9);
}

export function memoryBytes(memoryLimitMb: number): number {
  return Math.round(memoryLimitMb * MIB);
}

/** Docker's `--gpus all` / `--gpus N`, with the driver named as most clients send it. */
export function gpuDeviceRequests(gpus: number | 'all' | undefined): Docker.DeviceRequest[] | undefined {
  if (gpus === undefined || gpus === 0) return undefined;
  return [{ Driver: 'nvidia', Count: gpus === 'all' ? -1 : gpus, Capabilities: [['gpu']], Options: {} }];
}

/** Every label the agent owns; a spec cannot override them (they are how the agent finds its containers). */
export function containerLabels(
  spec: ContainerSpec,
  ctx: Pick<CreateContext, 'nodeName' | 'commandId' | 'model'>,
): Record<string, string> {
  const labels: Record<string, string> = {
    ...spec.labels,
    [LABELS.managed]: 'true',
    [LABELS.node]: ctx.nodeName,
    [LABELS.instance]: spec.instanceId,
    [LABELS.image]: spec.imageId,
    [LABELS.kind]: spec.kind,
  };
  if (ctx.commandId !== undefined) labels[LABELS.command] = ctx.commandId;
  // run/model name what a container belongs to; default them from the spec when not given.
  if (spec.kind === 'run') labels[LABELS.run] = spec.labels[LABELS.run] ?? spec.instanceId;
  const model = ctx.model ?? spec.labels[LABELS.model];
  if (model !== undefined) labels[LABELS.model] = model;
  return labels;
}

export function storageOptFor(
  diskLimitGb: number | undefined,
  support: DiskLimitSupport,
): Record<string, string> | undefined {
  if (diskLimitGb === undefined) return undefined;
  if (!support.supported) throw new DiskLimitUnsupportedError(diskLimitGb, support.reason);
  return { size: `${diskLimitGb}G` };
}

function assertGpuMode(gpus: number | 'all' | undefined, mode: GpuMode): void {
  if (gpus === undefined || gpus === 0 || mode !== 'none') return;
  throw new GpuUnsupportedError(gpus, 'the engine reports no NVIDIA runtime (nvidia-container-toolkit)');
}

/** Maps a ContainerSpec to dockerode's create options. Throws rather than drop a limit it cannot apply. */
export function buildCreateOptions(spec: ContainerSpec, ctx: CreateContext): Docker.ContainerCreateOptions {
  assertGpuMode(spec.gpus, ctx.gpuMode);
  const storageOpt = storageOptFor(spec.diskLimitGb, ctx.diskLimit);

  const exposed: Record<string, object> = {};
  const bindings: Record<string, Docker.PortBinding[]> = {};
  for (const p of spec.ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    // HostPort "0": the engine picks a free port; the real one is read back from inspect.
    (bindings[key] ??= []).push({ HostIp: '', HostPort: String(p.hostPort) });
  }

  const hostConfig: Docker.HostConfig = {
    RestartPolicy: { Name: spec.restart, MaximumRetryCount: 0 },
  };
  if (spec.cpuLimit !== undefined) hostConfig.NanoCpus = nanoCpus(spec.cpuLimit);
  if (spec.memoryLimitMb !== undefined) hostConfig.Memory = memoryBytes(spec.memoryLimitMb);
  if (spec.ports.length > 0) hostConfig.PortBindings = bindings;
  if (spec.volumes.length > 0) {
    hostConfig.Binds = spec.volumes.map((v) => `${v.hostPath}:${v.containerPath}${v.readOnly ? ':ro' : ''}`);
  }
  if (storageOpt) hostConfig.StorageOpt = storageOpt;
  if (spec.gpus !== undefined && spec.gpus !== 0) {
    // Jetson's iGPU (and Podman's compat API, which ignores DeviceRequests) go through the nvidia runtime.
    if (ctx.gpuMode === 'nvidia-runtime') hostConfig.Runtime = 'nvidia';
    else hostConfig.DeviceRequests = gpuDeviceRequests(spec.gpus);
  }

  const options: Docker.ContainerCreateOptions = {
    name: spec.name,
    Image: spec.imageId,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: containerLabels(spec, ctx),
    HostConfig: hostConfig,
  };
  if (spec.command && spec.command.length > 0) options.Cmd = spec.command;
  if (spec.ports.length > 0) options.ExposedPorts = exposed;
  return options;
}

// Env the engine adds on its own; copying them into a recreated container would pin stale values.
const ENGINE_ENV = /^(HOSTNAME|container)=/;

/**
 * Create options for a replacement of an existing container (limits changed, same everything else):
 * the engine could not update it in place. Host ports are pinned to the ones actually bound so
 * clients keep reaching the service.
 */
export function createOptionsFromInspect(
  info: Docker.ContainerInspectInfo,
  limits: ResourceLimits,
  ctx: { diskLimit: DiskLimitSupport; commandId?: string },
): Docker.ContainerCreateOptions {
  const old = info.HostConfig;
  const hostConfig: Docker.HostConfig = {
    RestartPolicy: old.RestartPolicy ?? { Name: 'no' },
  };
  const nano = limits.cpuLimit !== undefined ? nanoCpus(limits.cpuLimit) : old.NanoCpus;
  if (nano) hostConfig.NanoCpus = nano;
  const memory = limits.memoryLimitMb !== undefined ? memoryBytes(limits.memoryLimitMb) : old.Memory;
  if (memory) hostConfig.Memory = memory;
  if (old.Binds && old.Binds.length > 0) hostConfig.Binds = old.Binds;
  if (old.DeviceRequests && old.DeviceRequests.length > 0) hostConfig.DeviceRequests = old.DeviceRequests;
  if (old.Runtime === 'nvidia') hostConfig.Runtime = 'nvidia';
  const storageOpt =
    limits.diskLimitGb !== undefined ? storageOptFor(limits.diskLimitGb, ctx.diskLimit) : old.StorageOpt;
  if (storageOpt && Object.keys(storageOpt).length > 0) hostConfig.StorageOpt = storageOpt;

  const bound = portsFromInspect(info);
  const requested = (old.PortBindings ?? {}) as Record<string, Docker.PortBinding[] | null>;
  const bindings: Record<string, Docker.PortBinding[]> = {};
  for (const [key, list] of Object.entries(requested)) {
    const [port, proto = 'tcp'] = key.split('/');
    const actual = bound.find((b) => String(b.containerPort) === port && b.protocol === proto);
    bindings[key] = (list ?? [{}]).map((b) => ({
      HostIp: b.HostIp ?? '',
      HostPort: actual ? String(actual.hostPort) : (b.HostPort ?? '0'),
    }));
  }
  if (Object.keys(bindings).length > 0) hostConfig.PortBindings = bindings;

  const labels = { ...(info.Config.Labels ?? {}) };
  if (ctx.commandId !== undefined) labels[LABELS.command] = ctx.commandId;
  const exposed = { ...(info.Config.ExposedPorts ?? {}) };
  for (const key of Object.keys(bindings)) exposed[key] ??= {};

  const options: Docker.ContainerCreateOptions = {
    name: info.Name.replace(/^\//, ''),
    Image: info.Config.Image,
    Env: (info.Config.Env ?? []).filter((e) => !ENGINE_ENV.test(e)),
    Labels: labels,
    HostConfig: hostConfig,
  };
  if (info.Config.Cmd && info.Config.Cmd.length > 0) options.Cmd = info.Config.Cmd;
  const entrypoint = info.Config.Entrypoint;
  if (Array.isArray(entrypoint) ? entrypoint.length > 0 : Boolean(entrypoint))
    options.Entrypoint = entrypoint;
  if (info.Config.WorkingDir) options.WorkingDir = info.Config.WorkingDir;
  if (info.Config.User) options.User = info.Config.User;
  if (info.Config.Tty) options.Tty = true;
  if (Object.keys(exposed).length > 0) options.ExposedPorts = exposed;
  return options;
}

/** The host ports actually bound, IPv4/IPv6 duplicates folded. */
export function portsFromInspect(info: Pick<Docker.ContainerInspectInfo, 'NetworkSettings'>): PortMapping[] {
  const out: PortMapping[] = [];
  for (const [key, list] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const [port, protocol = 'tcp'] = key.split('/');
    for (const b of list ?? []) {
      const hostPort = Number(b.HostPort);
      const containerPort = Number(port);
      if (!Number.isInteger(hostPort) || hostPort <= 0 || !Number.isInteger(containerPort)) continue;
      if (
        out.some(
          (p) => p.containerPort === containerPort && p.protocol === protocol && p.hostPort === hostPort,
        )
      )
        continue;
      out.push({ containerPort, hostPort, protocol });
    }
  }
  return out;
}

const KINDS: readonly ContainerKind[] = ['service', 'run', 'model'];

/** Docker's zero time means "never". */
function timeOrNull(value: string | undefined): string | null {
  if (!value || value.startsWith('0001-01-01')) return null;
  return value;
}

export function toManagedContainer(info: Docker.ContainerInspectInfo): ManagedContainer {
  const labels = info.Config?.Labels ?? {};
  const kindLabel = labels[LABELS.kind] as ContainerKind | undefined;
  const running = info.State?.Running === true;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    instanceId: labels[LABELS.instance] ?? '',
    kind: kindLabel !== undefined && KINDS.includes(kindLabel) ? kindLabel : 'service',
    imageId: labels[LABELS.image] ?? info.Config?.Image ?? info.Image,
    state: info.State?.Status ?? 'unknown',
    running,
    exitCode: running || info.State?.Status === 'created' ? null : (info.State?.ExitCode ?? null),
    startedAt: timeOrNull(info.State?.StartedAt),
    finishedAt: timeOrNull(info.State?.FinishedAt),
    restartCount: info.RestartCount ?? 0,
    ports: portsFromInspect(info),
    labels,
  };
}

/** The parts of a stats answer the agent reads; engines differ in which are present. */
export interface RawStats {
  cpu_stats?: {
    cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

export interface CpuSample {
  total: number;
  system: number;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * Docker's formula (the CLI's): cpu% = Δcontainer / Δsystem × online CPUs × 100, memory without
 * the reclaimable page cache. Podman answers stream=false with an empty precpu_stats, so the
 * previous sample the caller kept stands in for it; with neither, cpuPercent is null, never a guess.
 */
export function computeStats(
  raw: RawStats,
  previous?: CpuSample,
): { stats: ContainerStats; sample: CpuSample | null } {
  const cpu = raw.cpu_stats;
  const total = cpu?.cpu_usage?.total_usage;
  const system = cpu?.system_cpu_usage;
  const sample = total !== undefined && system !== undefined ? { total, system } : null;
  const pre = raw.precpu_stats;
  const before: CpuSample | undefined =
    pre?.system_cpu_usage && pre.cpu_usage?.total_usage !== undefined
      ? { total: pre.cpu_usage.total_usage, system: pre.system_cpu_usage }
      : previous;
  let cpuPercent: number | null = null;
  if (sample && before) {
    const dCpu = sample.total - before.total;
    const dSys = sample.system - before.system;
    const online = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1;
    if (dSys > 0 && dCpu >= 0) cpuPercent = round2((dCpu / dSys) * online * 100);
  }

  const mem = raw.memory_stats;
  let memoryUsageMb: number | null = null;
  let memoryLimitMb: number | null = null;
  let memoryPercent: number | null = null;
  if (mem?.usage !== undefined) {
    // cgroup v2: inactive_file; v1: total_inactive_file; both are cache the kernel can drop.
    const s = mem.stats ?? {};
    const cache = s['inactive_file'] ?? s['total_inactive_file'] ?? 0;
    const used = cache < mem.usage ? mem.usage - cache : mem.usage;
    memoryUsageMb = round2(used / MIB);
    if (mem.limit) {
      memoryLimitMb = round2(mem.limit / MIB);
      memoryPercent = round2((used / mem.limit) * 100);
    }
  }
  return { stats: { cpuPercent, memoryUsageMb, memoryLimitMb, memoryPercent }, sample };
}

/**
 * Docker multiplexes stdout/stderr of a container without a TTY: frames of an 8-byte header
 * (stream type 0/1/2, three zero bytes, big-endian length) then the payload. A TTY container's
 * log is raw; that is detected from the first header and returned as is.
 */
export function demuxLogs(buffer: Buffer): { stdout: string; stderr: string; combined: string } {
  const looksFramed =
    buffer.length >= 8 && buffer[0]! <= 2 && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0;
  if (!looksFramed) {
    const text = buffer.toString('utf8');
    return { stdout: text, stderr: '', combined: text };
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset]!;
    const size = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + size);
    (type === 2 ? err : out).push(payload);
    all.push(payload);
    offset += 8 + size;
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    combined: Buffer.concat(all).toString('utf8'),
  };
}

/** Only these storage setups can cap a container's writable layer (Docker's --storage-opt size). */
export function diskLimitSupport(info: {
  Driver?: string;
  DriverStatus?: Array<[string, string]> | string[][];
}): DiskLimitSupport {
  const driver = info.Driver ?? 'unknown';
  const backing = (info.DriverStatus ?? []).find((row) => row[0] === 'Backing Filesystem')?.[1] ?? null;
  const described = `storage driver ${driver}${backing ? ` on ${backing}` : ''}`;
  if (['btrfs', 'zfs', 'devicemapper', 'windowsfilter'].includes(driver))
    return { supported: true, reason: described };
  // overlay on xfs also needs the pquota mount option, which the API does not report: try, and
  // let the engine's refusal fail the command.
  if ((driver === 'overlay2' || driver === 'overlay') && backing === 'xfs')
    return { supported: true, reason: described };
  return { supported: false, reason: `the engine reports ${described}` };
}

/** What GET /system/df answers; Docker and Podman fill different parts, and either may send null lists. */
export interface RawDiskUsage {
  LayersSize?: number;
  Images?: Array<{ Size?: number; SharedSize?: number; Containers?: number }> | null;
  Containers?: Array<{ SizeRw?: number; State?: string }> | null;
  Volumes?: Array<{ UsageData?: { Size?: number } | null }> | null;
  BuildCache?: Array<{ Size?: number }> | null;
}

const bytes = (n: number | undefined): number => (typeof n === 'number' && n > 0 ? n : 0);
const sum = <T>(list: readonly T[], f: (x: T) => number): number => list.reduce((a, x) => a + f(x), 0);

/**
 * `docker system df` from the raw answer: images unused by any container and the writable layers
 * of containers that do not run are what a prune could reclaim (the CLI's RECLAIMABLE column).
 * Unknown sizes (-1, missing) count as 0.
 */
export function summarizeDiskUsage(raw: RawDiskUsage): EngineDiskUsage {
  const images = raw.Images ?? [];
  const containers = raw.Containers ?? [];
  const volumes = raw.Volumes ?? [];
  return {
    layersSizeBytes: bytes(raw.LayersSize),
    images: {
      count: images.length,
      sizeBytes: sum(images, (i) => bytes(i.Size)),
      reclaimableBytes: sum(images, (i) => (i.Containers ? 0 : bytes(i.Size) - bytes(i.SharedSize))),
    },
    containers: {
      count: containers.length,
      sizeBytes: sum(containers, (c) => bytes(c.SizeRw)),
      reclaimableBytes: sum(containers, (c) => (c.State === 'running' ? 0 : bytes(c.SizeRw))),
    },
    volumes: { count: volumes.length, sizeBytes: sum(volumes, (v) => bytes(v.UsageData?.Size)) },
    buildCacheBytes: sum(raw.BuildCache ?? [], (b) => bytes(b.Size)),
  };
}

// ---------------------------------------------------------------------------------------------
// dockerode implementation

export interface EngineTimeouts {
  inspectMs: number;
  createMs: number;
  startMs: number;
  /** Added to the stop command's own grace period. */
  stopExtraMs: number;
  removeMs: number;
  logsMs: number;
  statsMs: number;
  updateMs: number;
  pullMs: number;
  /** docker system df walks every layer: slow on a full disk. */
  diskUsageMs: number;
  pruneMs: number;
}

export const DEFAULT_ENGINE_TIMEOUTS: EngineTimeouts = {
  inspectMs: 10_000,
  createMs: 30_000,
  startMs: 60_000,
  stopExtraMs: 15_000,
  removeMs: 30_000,
  logsMs: 15_000,
  // Docker's stream=false waits ~1 s for a second sample.
  statsMs: 10_000,
  updateMs: 15_000,
  pullMs: 15 * 60_000,
  diskUsageMs: 60_000,
  pruneMs: 120_000,
};

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

export class DockerEngine implements EngineDriver {
  private caps: Promise<EngineCapabilities> | null = null;
  private readonly timeouts: EngineTimeouts;
  private readonly cpuSamples = new Map<string, CpuSample>();
  private readonly log: Logger;
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
  }

  /** Runs one engine call with its own deadline; the call is aborted, not just abandoned, on timeout. */
  private async call<T>(
    op: string,
    timeoutMs: number,
    fn: (signal: AbortSignal) => Promise<T>,
    outer?: AbortSignal,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
    let onAbort: (() => void) | undefined;
    // Some dockerode paths ignore the signal; the race makes the deadline hold regardless.
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      return await Promise.race([fn(signal), aborted]);
    } catch (error) {
      if (timeout.aborted && !outer?.aborted) {
        throw new EngineTimeoutError(op, `engine ${op} timed out after ${timeoutMs} ms`, undefined, {
          cause: error,
        });
      }
      if (error instanceof EngineError || outer?.aborted) throw error;
      const status = statusCodeOf(error);
      const detail = engineMessage(error);
      if (status === 404 && op.startsWith('container.')) {
        throw new ContainerNotFoundError(op, `engine ${op}: ${detail}`, status, { cause: error });
      }
      throw new EngineError(op, `engine ${op} failed: ${detail}`, status, { cause: error });
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.call('ping', this.timeouts.inspectMs, (s) => this.loose.ping({ abortSignal: s }), signal);
  }

  capabilities(): Promise<EngineCapabilities> {
    this.caps ??= this.readCapabilities().catch((error: unknown) => {
      this.caps = null; // try again next time rather than cache a failure
      throw error;
    });
    return this.caps;
  }

  private async readCapabilities(): Promise<EngineCapabilities> {
    const [version, info] = await Promise.all([
      this.call('version', this.timeouts.inspectMs, (s) => this.loose.version({ abortSignal: s })),
      this.call('info', this.timeouts.inspectMs, (s) => this.loose.info({ abortSignal: s })),
    ]);
    const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name));
    const runtimes = Object.keys(info.Runtimes ?? {});
    const nvidiaRuntime = runtimes.includes('nvidia');
    let gpuMode: GpuMode;
    if (this.options.jetson || (podman && nvidiaRuntime)) gpuMode = nvidiaRuntime ? 'nvidia-runtime' : 'none';
    else if (podman)
      gpuMode = 'none'; // Podman's compat API starts containers with DeviceRequests and no GPU (seen on 4.3)
    else
      gpuMode =
        nvidiaRuntime || (await (this.options.hasNvidiaHook ?? nvidiaHookOnPath)())
          ? 'device-requests'
          : 'none';
    const disk = diskLimitSupport(info);
    const caps: EngineCapabilities = {
      name: podman ? 'podman' : 'docker',
      version: version.Version,
      apiVersion: version.ApiVersion,
      storageDriver: info.Driver ?? 'unknown',
      backingFilesystem: (info.DriverStatus ?? []).find((r) => r[0] === 'Backing Filesystem')?.[1] ?? null,
      diskLimit: disk,
      gpuMode,
      gpuRuntime: gpuMode !== 'none',
      runtimes,
      rootDir: info.DockerRootDir || null,
    };
    this.log.info('engine capabilities', { ...caps });
    return caps;
  }

  async ensureImage(ref: string): Promise<{ pulled: boolean }> {
    try {
      await this.call('image.inspect', this.timeouts.inspectMs, (s) =>
        this.docker.getImage(ref).inspect({ abortSignal: s } as Docker.ImageInspectOptions),
      );
      return { pulled: false };
    } catch (error) {
      if ((error as EngineError).statusCode !== 404) throw error;
    }
    this.log.info('pulling image', { image: ref });
    try {
      await this.call('image.pull', this.timeouts.pullMs, async (s) => {
        const stream = (await this.docker.pull(ref, { abortSignal: s })) as NodeJS.ReadableStream;
        await new Promise<void>((resolve, reject) => {
          this.docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
            const failed = (events ?? []).find((e) => e.error);
            if (err || failed) reject(err ?? new Error(failed?.error));
            else resolve();
          });
        });
      });
    } catch (error) {
      throw new EngineError(
        'image.pull',
        `image ${ref} is not on this node and could not be pulled: ${engineMessage(error)}`,
        statusCodeOf(error),
        { cause: error },
      );
    }
    return { pulled: true };
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
      return await this.call('container.create', this.timeouts.createMs, (s) =>
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
    return this.call('container.inspect', this.timeouts.inspectMs, (s) =>
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
    const list = await this.call('container.list', this.timeouts.inspectMs, (s) =>
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
      await this.call('container.start', this.timeouts.startMs, (s) =>
        this.docker.getContainer(id).start({ abortSignal: s }),
      );
    } catch (error) {
      if ((error as EngineError).statusCode === 304) return; // already running
      throw error;
    }
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    try {
      await this.call('container.stop', timeoutSeconds * 1000 + this.timeouts.stopExtraMs, (s) =>
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
      await this.call('container.remove', this.timeouts.removeMs, (s) =>
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
    const buffer = await this.call('container.logs', this.timeouts.logsMs, (s) =>
      this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail, follow: false, abortSignal: s }),
    );
    return demuxLogs(Buffer.isBuffer(buffer) ? buffer : Buffer.from(String(buffer))).combined;
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
        await this.call('container.update', this.timeouts.updateMs, (s) =>
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
    const raw = await this.call('container.stats', this.timeouts.statsMs, (s) =>
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

  async watchEvents(onEvent: (event: EngineEvent) => void, signal: AbortSignal): Promise<void> {
    const filters = {
      type: ['container'],
      label: [`${LABELS.managed}=true`, `${LABELS.node}=${this.options.nodeName}`],
    };
    // The deadline covers opening the stream only: tied to the stream itself, it cut every stream
    // after inspectMs, and the watcher's back-off (reset only after 60 s up) kept it down ever longer.
    const opening = new AbortController();
    const stream = (await this.call('events', this.timeouts.inspectMs, async (s) => {
      const onTimeout = (): void => opening.abort(s.reason);
      s.addEventListener('abort', onTimeout, { once: true });
      try {
        return await this.docker.getEvents({
          filters,
          abortSignal: AbortSignal.any([opening.signal, signal]),
        } as Docker.GetEventsOptions);
      } finally {
        s.removeEventListener('abort', onTimeout);
      }
    })) as NodeJS.ReadableStream & { destroy?: () => void };
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      const onAbortSignal = (): void => {
        stream.destroy?.();
        resolve();
      };
      signal.addEventListener('abort', onAbortSignal, { once: true });
      stream.on('data', (chunk: Buffer | string) => {
        buffered += chunk.toString();
        let newline: number;
        // Events are newline-delimited JSON; a chunk may hold part of one or several.
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) this.emitEvent(line, onEvent);
        }
      });
      stream.on('end', () => {
        signal.removeEventListener('abort', onAbortSignal);
        if (buffered.trim()) this.emitEvent(buffered.trim(), onEvent);
        resolve();
      });
      stream.on('error', (error: Error) => {
        signal.removeEventListener('abort', onAbortSignal);
        if (signal.aborted) resolve();
        else reject(error);
      });
    });
  }

  async pruneDanglingImages(): Promise<ImagePruneOutcome> {
    const out = await this.call('image.prune', this.timeouts.pruneMs, (s) =>
      this.loose.pruneImages({ filters: { dangling: ['true'] }, abortSignal: s }),
    );
    return {
      imagesDeleted: (out.ImagesDeleted ?? []).flatMap((d) => (d.Deleted ? [d.Deleted] : [])),
      spaceReclaimedBytes: bytes(out.SpaceReclaimed),
    };
  }

  async diskUsage(): Promise<EngineDiskUsage> {
    return summarizeDiskUsage(
      await this.call('system.df', this.timeouts.diskUsageMs, (s) => this.loose.df({ abortSignal: s })),
    );
  }

  async buildImage(input: ImageBuildInput): Promise<{ imageId: string; log: string[] }> {
    const src = await readdir(input.contextDir);
    const log: string[] = [];
    let imageId: string | undefined;
    const events = await this.call('image.build', input.timeoutMs, async (s) => {
      const stream = (await this.docker.buildImage(
        { context: input.contextDir, src },
        {
          t: input.tag,
          dockerfile: input.dockerfile,
          buildargs: input.buildArgs,
          rm: true,
          forcerm: true,
          abortSignal: s,
        } as Docker.ImageBuildOptions,
      )) as NodeJS.ReadableStream;
      return this.followImageStream(stream, log);
    });
    for (const e of events) imageId = e.aux?.ID ?? imageId;
    const failed = events.find((e) => e.error);
    if (failed) throw new ImageStreamError('image.build', `build failed: ${failed.error}`, log);
    // Podman streams the id as its last line; inspecting the tag is the one answer both engines agree on.
    const inspected = await this.call('image.inspect', this.timeouts.inspectMs, (s) =>
      this.docker.getImage(input.tag).inspect({ abortSignal: s } as Docker.ImageInspectOptions),
    );
    return { imageId: inspected.Id ?? imageId ?? '', log };
  }

  async pushImage(
    ref: string,
    options: { insecure: boolean; timeoutMs: number },
  ): Promise<{ digest: string | null; log: string[] }> {
    const { repo, tag } = splitImageRef(ref);
    const log: string[] = [];
    const events = await this.call('image.push', options.timeoutMs, async (s) => {
      // tlsVerify is Podman's compat query (Docker ignores it and trusts 127.0.0.0/8 and its insecure-registries).
      const stream = (await this.docker.getImage(repo).push({
        tag,
        ...(options.insecure ? { tlsVerify: false } : {}),
        authconfig: {},
        abortSignal: s,
      } as Docker.ImagePushOptions)) as NodeJS.ReadableStream;
      return this.followImageStream(stream, log);
    });
    const failed = events.find((e) => e.error);
    if (failed) throw new ImageStreamError('image.push', `push failed: ${failed.error}`, log);
    const digest =
      events.map((e) => e.aux?.Digest ?? /digest: (sha256:[0-9a-f]{64})/.exec(e.status ?? '')?.[1]).find(Boolean) ??
      null;
    return { digest, log };
  }

  /** Collects a build/push progress stream: its events, and its text lines into `log`. */
  private followImageStream(stream: NodeJS.ReadableStream, log: string[]): Promise<ImageStreamEvent[]> {
    return new Promise((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, events: ImageStreamEvent[]) => (err ? reject(err) : resolve(events ?? [])),
        (e: ImageStreamEvent) => {
          const text = e.stream ?? e.error ?? (e.status ? `${e.status}${e.progress ? ` ${e.progress}` : ''}` : '');
          for (const line of text.split('\n')) if (line.trim()) log.push(line);
          if (log.length > 2000) log.splice(0, log.length - 2000);
        },
      );
    });
  }

  private emitEvent(line: string, onEvent: (event: EngineEvent) => void): void {
    let raw: {
      Type?: string;
      Action?: string;
      status?: string;
      id?: string;
      Actor?: { ID?: string; Attributes?: Record<string, string> };
    };
    try {
      raw = JSON.parse(line) as typeof raw;
    } catch {
      return;
    }
    const attrs = raw.Actor?.Attributes ?? {};
    if (attrs[LABELS.managed] !== 'true' || attrs[LABELS.node] !== this.options.nodeName) return;
    const exit = attrs['exitCode'] ?? attrs['containerExitCode'];
    onEvent({
      action: raw.Action ?? raw.status ?? '',
      containerId: raw.Actor?.ID ?? raw.id ?? '',
      exitCode: exit !== undefined && /^-?\d+$/.test(exit) ? Number(exit) : null,
      labels: attrs,
    });
  }
}

interface LooseDocker {
  ping(options: { abortSignal: AbortSignal }): Promise<unknown>;
  version(options: { abortSignal: AbortSignal }): Promise<Docker.DockerVersion>;
  info(options: { abortSignal: AbortSignal }): Promise<DockerInfo>;
  df(options: { abortSignal: AbortSignal }): Promise<RawDiskUsage>;
  pruneImages(options: {
    filters: Record<string, string[]>;
    abortSignal: AbortSignal;
  }): Promise<{ ImagesDeleted?: Array<{ Deleted?: string; Untagged?: string }> | null; SpaceReclaimed?: number }>;
}

interface ImageStreamEvent {
  stream?: string;
  status?: string;
  progress?: string;
  error?: string;
  aux?: { ID?: string; Digest?: string };
}

/** `host:5000/a/b:tag` → repo `host:5000/a/b`, tag `tag` (latest when none; a port is not a tag). */
export function splitImageRef(ref: string): { repo: string; tag: string } {
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/')) return { repo: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { repo: base, tag: 'latest' };
}

interface DockerInfo {
  DockerRootDir?: string;
  Driver?: string;
  DriverStatus?: Array<[string, string]>;
  Runtimes?: Record<string, unknown>;
}

/** Docker answers 409 to a taken name; Podman's compat API has answered 500 "name already in use". */
function isNameConflict(error: unknown): boolean {
  const status = (error as EngineError).statusCode;
  return status === 409 || (status === 500 && /already in use/i.test(engineMessage(error)));
}

/** The engine's own words from a dockerode error ("no such container", "port is already allocated"). */
export function engineMessage(error: unknown): string {
  const e = error as {
    json?: { message?: string; cause?: string } | null;
    reason?: string;
    message?: string;
    cause?: unknown;
  } | null;
  if (e instanceof EngineError) return e.message;
  const fromJson = e?.json?.message ?? e?.json?.cause;
  if (typeof fromJson === 'string' && fromJson) return fromJson;
  return e?.message ?? String(error);
}

/** The NVIDIA Container Toolkit's hook is what makes Docker honour DeviceRequests with driver nvidia. */
async function nvidiaHookOnPath(): Promise<boolean> {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    for (const name of ['nvidia-container-runtime-hook', 'nvidia-container-cli']) {
      try {
        await access(join(dir, name), constants.X_OK);
        return true;
      } catch {
        // next
      }
    }
  }
  return false;
}

/**
 * Makes sure a container for spec.instanceId runs: reuses (and starts) one that carries the
 * instance label, e.g. after the agent died mid-start, and only otherwise pulls and creates.
 */
export async function ensureStarted(
  engine: EngineDriver,
  spec: ContainerSpec,
  options: StartOptions = {},
): Promise<{ container: ManagedContainer; reused: boolean }> {
  const existing = await engine.findByInstance(spec.instanceId);
  if (existing) {
    if (!existing.running) await engine.start(existing.id);
    return { container: existing.running ? existing : await engine.inspect(existing.id), reused: true };
  }
  await engine.ensureImage(spec.imageId);
  return { container: await engine.createAndStart(spec, options), reused: false };
}
