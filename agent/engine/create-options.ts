import type Docker from 'dockerode';
import type { ContainerSpec } from '../../protocol/commands.js';
import { LABELS } from '../../protocol/messages.js';
import { DiskLimitUnsupportedError, GpuUnsupportedError } from './errors.js';
import type {
  ContainerKind,
  DiskLimitSupport,
  GpuMode,
  ManagedContainer,
  PortMapping,
  ResourceLimits,
} from './types.js';

/** How a ContainerSpec becomes engine create options, and an inspect answer a ManagedContainer (pure, unit-tested). */

export interface CreateContext {
  nodeName: string;
  gpuMode: GpuMode;
  diskLimit: DiskLimitSupport;
  commandId?: string;
  model?: string;
}

const MIB = 1024 * 1024;

/** Where published ports bind when a start names no host address. */
export const DEFAULT_HOST_IP = '127.0.0.1';

/** `cpuLimit` in CPUs → NanoCpus (1 CPU = 1e9). */
export function nanoCpus(cpuLimit: number): number {
  return Math.round(cpuLimit * 1e9);
}

export function memoryBytes(memoryLimitMb: number): number {
  return Math.round(memoryLimitMb * MIB);
}

type GpuAsk = Pick<ContainerSpec, 'gpus' | 'gpuDeviceIds'>;

const wantsGpus = (s: GpuAsk) => (s.gpuDeviceIds?.length ?? 0) > 0 || (s.gpus !== undefined && s.gpus !== 0);

/**
 * Docker's `--gpus all` / `--gpus N` / `--gpus '"device=0,1"'` (ids with Count 0), with the driver
 * named as most clients send it.
 */
export function gpuDeviceRequests(
  gpus: number | 'all' | undefined,
  deviceIds?: string[],
): Docker.DeviceRequest[] | undefined {
  if (deviceIds && deviceIds.length > 0)
    return [{ Driver: 'nvidia', Count: 0, DeviceIDs: deviceIds, Capabilities: [['gpu']], Options: {} }];
  if (gpus === undefined || gpus === 0) return undefined;
  return [{ Driver: 'nvidia', Count: gpus === 'all' ? -1 : gpus, Capabilities: [['gpu']], Options: {} }];
}

/**
 * NVIDIA_VISIBLE_DEVICES for the nvidia runtime, as Docker's own nvidia driver sets it for
 * DeviceRequests: the ids, else the first N indexes, else all.
 */
export function nvidiaVisibleDevices(ask: GpuAsk): string | undefined {
  if (ask.gpuDeviceIds && ask.gpuDeviceIds.length > 0) return ask.gpuDeviceIds.join(',');
  if (ask.gpus === 'all') return 'all';
  if (ask.gpus === undefined || ask.gpus === 0) return undefined;
  return Array.from({ length: ask.gpus }, (_, i) => String(i)).join(',');
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

function assertGpuMode(ask: GpuAsk, mode: GpuMode): void {
  if (!wantsGpus(ask) || mode !== 'none') return;
  throw new GpuUnsupportedError(
    ask.gpuDeviceIds?.length ? ask.gpuDeviceIds.length : (ask.gpus ?? 0),
    'the engine reports no NVIDIA runtime (nvidia-container-toolkit)',
  );
}

/** Maps a ContainerSpec to dockerode's create options. Throws rather than drop a limit it cannot apply. */
export function buildCreateOptions(spec: ContainerSpec, ctx: CreateContext): Docker.ContainerCreateOptions {
  assertGpuMode(spec, ctx.gpuMode);
  const storageOpt = storageOptFor(spec.diskLimitGb, ctx.diskLimit);

  const exposed: Record<string, object> = {};
  const bindings: Record<string, Docker.PortBinding[]> = {};
  for (const p of spec.ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    // HostPort "0": the engine picks a free port; the real one is read back from inspect. Loopback
    // unless the start named an address: a published port is not for the whole network by default.
    (bindings[key] ??= []).push({ HostIp: p.hostIp ?? DEFAULT_HOST_IP, HostPort: String(p.hostPort) });
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
  // Only reached when the node's policy allowed them (agent/policy.ts, checked by the executor).
  if (spec.privileged) hostConfig.Privileged = true;
  if (spec.network === 'host') hostConfig.NetworkMode = 'host';
  if (spec.pid === 'host') hostConfig.PidMode = 'host';
  if (spec.capAdd?.length) hostConfig.CapAdd = spec.capAdd;
  const env = { ...spec.env };
  if (wantsGpus(spec)) {
    // Jetson's iGPU (and Podman's compat API, which ignores DeviceRequests) go through the nvidia
    // runtime, which picks the GPUs from NVIDIA_VISIBLE_DEVICES (one the spec set itself wins).
    if (ctx.gpuMode === 'nvidia-runtime') {
      hostConfig.Runtime = 'nvidia';
      env['NVIDIA_VISIBLE_DEVICES'] ??= nvidiaVisibleDevices(spec)!;
    } else hostConfig.DeviceRequests = gpuDeviceRequests(spec.gpus, spec.gpuDeviceIds);
  }

  const options: Docker.ContainerCreateOptions = {
    name: spec.name,
    Image: spec.imageId,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
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
