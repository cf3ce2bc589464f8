import type { DiskLimitSupport, EngineDiskUsage } from './types.js';

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

/** A size the engine reported, unknown (-1, missing) as 0. */
export const bytes = (n: number | undefined): number => (typeof n === 'number' && n > 0 ? n : 0);
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
