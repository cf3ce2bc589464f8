import { describe, expect, it } from 'vitest';
import {
  cpuLimit,
  diskLimit,
  instanceResources,
  memoryLimit,
  parseCpu,
  parseSize,
  toReservation,
} from '../../../functions/orchestrator/resources.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseSize (Docker RAMInBytes grammar)', () => {
  it.each([
    ['512m', 512 * MiB],
    ['512M', 512 * MiB],
    ['512mb', 512 * MiB],
    ['512MiB', 512 * MiB],
    ['1g', GiB],
    ['1.5g', 1.5 * GiB],
    ['1024m', GiB],
    ['2 GB', 2 * GiB],
    ['64k', 64 * 1024],
    ['100', 100],
    ['100b', 100],
    ['1t', 1024 * GiB],
  ])('%s → %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['12xb', '', 'm', '-1g', '1gg', '12bb', '1,5g', 'abc', '1e3m', '0x10m'])('rejects %j', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });
});

describe('parseCpu', () => {
  it.each([
    ['0.5', 0.5],
    ['1', 1],
    ['1.0', 1],
    ['16', 16],
  ])('%s → %d cores', (text, cores) => expect(parseCpu(text)).toBe(cores));

  it.each(['0', '0.0', '-1', 'half', '1/2', '', '.5'])('rejects %j', (text) =>
    expect(parseCpu(text)).toBeUndefined(),
  );
});

describe('resource schemas', () => {
  it('memory_limit: sizes of at least 6m', () => {
    expect(memoryLimit.safeParse('512m').success).toBe(true);
    expect(memoryLimit.safeParse('6m').success).toBe(true);
    const bad = memoryLimit.safeParse('12xb');
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toMatch(/memory_limit must be a size/);
    const tiny = memoryLimit.safeParse('5m');
    expect(tiny.error?.issues[0]?.message).toBe('memory_limit must be at least 6m');
  });

  it('cpu_limit: positive cores up to 1024', () => {
    expect(cpuLimit.safeParse('0.25').success).toBe(true);
    expect(cpuLimit.safeParse('0').success).toBe(false);
    expect(cpuLimit.safeParse('2048').success).toBe(false);
  });

  it('disk_limit: a positive size', () => {
    expect(diskLimit.safeParse('10g').success).toBe(true);
    expect(diskLimit.safeParse('0g').success).toBe(false);
    expect(diskLimit.safeParse('ten').success).toBe(false);
  });

  it('InstanceResources reports the failing field by path', () => {
    const r = instanceResources.safeParse({ cpu_limit: '0.5', memory_limit: '12xb' });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path)).toEqual([['memory_limit']]);
  });
});

describe('toReservation', () => {
  it('converts to engine units', () => {
    expect(toReservation({ cpu_limit: '0.5', memory_limit: '512m', disk_limit: '10g', gpus: 1 })).toEqual({
      cpu: 0.5,
      memoryMb: 512,
      diskGb: 10,
      gpus: 1,
    });
    expect(toReservation({ memory_limit: '1.5g', disk_limit: '512m' })).toEqual({
      cpu: 0,
      memoryMb: 1536,
      diskGb: 0.5,
      gpus: 0,
    });
    expect(toReservation({})).toEqual({ cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 });
  });
});
