import { collectJetsonInfo, type JetsonInfo as CollectedJetson } from './collectors/jetson.js';
import { collectNvidiaGpus, NvidiaSmiError, type GpuInfo } from './collectors/nvidia-smi.js';
import { collectSystemInfo, type SystemInfo } from './collectors/system.js';
import { collectTegrastatsOnce, type TegrastatsSample } from './collectors/tegrastats.js';
import type { Gpu, JetsonInfo, NodeMetrics, RegisterRequest } from '../protocol/messages.js';
import type { ReportedPolicy } from '../protocol/policy.js';
import type { EngineCapabilities } from './engine/types.js';
import type { Logger } from './log.js';
import { AGENT_VERSION } from './version.js';

/** The collectors the agent uses; injectable so tests run without the host's tools. */
export interface Collectors {
  system: () => Promise<SystemInfo>;
  gpus: () => Promise<GpuInfo[]>;
  jetson: () => Promise<CollectedJetson | null>;
  tegrastats: () => Promise<TegrastatsSample | null>;
}

export const defaultCollectors: Collectors = {
  system: () => collectSystemInfo(),
  gpus: () => collectNvidiaGpus(),
  jetson: () => collectJetsonInfo('/'),
  tegrastats: () => collectTegrastatsOnce(),
};

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const round2 = (n: number): number => Math.round(n * 100) / 100;

export function toProtocolGpu(g: GpuInfo): Gpu {
  return {
    index: g.index,
    uuid: g.uuid,
    name: g.name,
    utilizationGpu: g.utilizationGpu,
    utilizationMemory: g.utilizationMemory,
    memoryTotalMiB: g.memoryTotalMiB,
    memoryUsedMiB: g.memoryUsedMiB,
    memoryFreeMiB: g.memoryFreeMiB,
    temperatureC: g.temperatureC,
    powerDrawW: g.powerDrawW,
    powerLimitW: g.powerLimitW,
    clockSmMHz: g.clockSmMHz,
    driverVersion: g.driverVersion,
  };
}

export function toProtocolJetson(j: CollectedJetson): JetsonInfo {
  return {
    l4t: j.l4tVersion,
    jetpack: j.jetpackVersion ?? (j.jetpackMajor !== null ? String(j.jetpackMajor) : null),
    cuda: j.cudaVersion,
    cudnn: j.cudnnVersion,
    model: j.model,
  };
}

/** GPUs, keeping the healthy ones when nvidia-smi half-fails (a GPU fell off the bus). */
async function gpusOrPartial(collectors: Collectors, log: Logger): Promise<GpuInfo[]> {
  try {
    return await collectors.gpus();
  } catch (error) {
    log.warn('nvidia-smi failed', { error });
    return error instanceof NvidiaSmiError ? error.gpus : [];
  }
}

export interface NodeFactsInput {
  nodeName: string;
  labels: Record<string, string>;
  cluster?: string;
  engine?: EngineCapabilities;
  jetson?: CollectedJetson | null;
  /** The policy in force, reported so the control plane places only what this node allows. */
  policy?: ReportedPolicy;
}

/** RegisterRequest from the collectors: system identity, GPUs, Jetson versions, engine facts. */
export async function buildRegisterRequest(
  input: NodeFactsInput,
  collectors: Collectors,
  log: Logger,
): Promise<RegisterRequest> {
  const [system, gpus, jetson] = await Promise.all([
    collectors.system(),
    gpusOrPartial(collectors, log),
    input.jetson !== undefined ? Promise.resolve(input.jetson) : collectors.jetson().catch(() => null),
  ]);
  const request: RegisterRequest = {
    nodeName: input.nodeName,
    hostname: system.hostname,
    addresses: system.addresses.map((a) => a.address),
    arch: system.arch,
    os: system.osName ?? `${system.platform} ${system.kernelRelease}`,
    cpuCount: Math.max(1, system.cpuCount),
    memoryMb: Math.round(system.memory.totalBytes / MIB),
    diskGb: system.disk ? round2(system.disk.totalBytes / GIB) : 0,
    gpus: gpus.map(toProtocolGpu),
    jetson: jetson ? toProtocolJetson(jetson) : null,
    labels: input.labels,
    agentVersion: AGENT_VERSION,
  };
  if (system.cpuModel) request.cpuModel = system.cpuModel;
  if (input.cluster) request.cluster = input.cluster;
  if (input.policy) request.policy = input.policy;
  if (input.engine) {
    request.engine = {
      name: input.engine.name,
      version: input.engine.version,
      gpuRuntime: input.engine.gpuRuntime,
    };
    request.driver = input.engine.name === 'process' ? 'process' : 'container';
  }
  return request;
}

/** Node metrics for a heartbeat; a collector that fails leaves its fields null, never the heartbeat out. */
export async function collectNodeMetrics(
  collectors: Collectors,
  options: { jetson: boolean },
  log: Logger,
): Promise<NodeMetrics> {
  const [system, gpus, tegrastats] = await Promise.all([
    collectors.system().catch((error: unknown) => {
      log.warn('system collector failed', { error });
      return null;
    }),
    gpusOrPartial(collectors, log),
    options.jetson
      ? collectors.tegrastats().catch((error: unknown) => {
          log.warn('tegrastats failed', { error });
          return null;
        })
      : Promise.resolve(null),
  ]);
  return {
    cpuPercent: system?.cpuPercent ?? null,
    memoryUsedMb: system ? Math.round(system.memory.usedBytes / MIB) : null,
    memoryTotalMb: system ? Math.round(system.memory.totalBytes / MIB) : null,
    diskUsedGb: system?.disk ? round2(system.disk.usedBytes / GIB) : null,
    diskTotalGb: system?.disk ? round2(system.disk.totalBytes / GIB) : null,
    gpus: gpus.map(toProtocolGpu),
    tegrastats: tegrastats ? { ...tegrastats } : null,
  };
}
