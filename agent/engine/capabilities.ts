import type { Logger } from '../log.js';
import { engineCall, type EngineTimeouts, type LooseDocker } from './call.js';
import { diskLimitSupport } from './disk.js';
import { nvidiaHookOnPath } from './startup.js';
import type { EngineCapabilities, GpuMode } from './types.js';

/** What decides how GPUs are handed to containers. */
export interface CapabilityOptions {
  /** A Jetson runs GPU containers with the nvidia runtime. */
  jetson?: boolean;
  /** Looks for the NVIDIA container hook on PATH (tests stub it). */
  hasNvidiaHook?: () => Promise<boolean>;
}

/** The engine's name, version, storage, disk-limit support and GPU mode, from its version and info calls. */
export async function readCapabilities(
  docker: LooseDocker,
  timeouts: EngineTimeouts,
  options: CapabilityOptions,
  log: Logger,
): Promise<EngineCapabilities> {
  const [version, info] = await Promise.all([
    engineCall('version', timeouts.inspectMs, (s) => docker.version({ abortSignal: s })),
    engineCall('info', timeouts.inspectMs, (s) => docker.info({ abortSignal: s })),
  ]);
  const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name));
  const runtimes = Object.keys(info.Runtimes ?? {});
  const nvidiaRuntime = runtimes.includes('nvidia');
  let gpuMode: GpuMode;
  if (options.jetson || (podman && nvidiaRuntime)) gpuMode = nvidiaRuntime ? 'nvidia-runtime' : 'none';
  else if (podman)
    gpuMode = 'none'; // Podman's compat API starts containers with DeviceRequests and no GPU (seen on 4.3)
  else
    gpuMode =
      nvidiaRuntime || (await (options.hasNvidiaHook ?? nvidiaHookOnPath)()) ? 'device-requests' : 'none';
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
  log.info('engine capabilities', { ...caps });
  return caps;
}
