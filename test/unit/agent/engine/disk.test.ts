import { describe, expect, it } from 'vitest';
import { diskLimitSupport, summarizeDiskUsage } from '../../../../agent/engine/disk.js';

describe('diskLimitSupport', () => {
  it('reads support from docker info', () => {
    expect(
      diskLimitSupport({ Driver: 'overlay', DriverStatus: [['Backing Filesystem', 'extfs']] }).supported,
    ).toBe(false);
    expect(
      diskLimitSupport({ Driver: 'overlay2', DriverStatus: [['Backing Filesystem', 'xfs']] }).supported,
    ).toBe(true);
    expect(diskLimitSupport({ Driver: 'btrfs' }).supported).toBe(true);
    expect(diskLimitSupport({ Driver: 'vfs' }).reason).toMatch(/vfs/);
  });
});

describe('summarizeDiskUsage (docker system df)', () => {
  it('counts unused images and stopped containers as reclaimable, unknown sizes as 0', () => {
    const usage = summarizeDiskUsage({
      LayersSize: 3000,
      Images: [
        { Size: 1000, SharedSize: 200, Containers: 1 },
        { Size: 500, SharedSize: 100, Containers: 0 },
        { Size: 300, SharedSize: -1, Containers: 0 },
      ],
      Containers: [{ SizeRw: 10, State: 'running' }, { SizeRw: 20, State: 'exited' }, { State: 'created' }],
      Volumes: [{ UsageData: { Size: 50 } }, { UsageData: { Size: -1 } }, { UsageData: null }],
      BuildCache: [{ Size: 7 }],
    });
    expect(usage).toEqual({
      layersSizeBytes: 3000,
      images: { count: 3, sizeBytes: 1800, reclaimableBytes: 700 },
      containers: { count: 3, sizeBytes: 30, reclaimableBytes: 20 },
      volumes: { count: 3, sizeBytes: 50 },
      buildCacheBytes: 7,
    });
  });

  it('reads an answer with null lists (Podman sends some)', () => {
    expect(summarizeDiskUsage({ Images: null, Containers: null, Volumes: null, BuildCache: null })).toEqual({
      layersSizeBytes: 0,
      images: { count: 0, sizeBytes: 0, reclaimableBytes: 0 },
      containers: { count: 0, sizeBytes: 0, reclaimableBytes: 0 },
      volumes: { count: 0, sizeBytes: 0 },
      buildCacheBytes: 0,
    });
  });
});
