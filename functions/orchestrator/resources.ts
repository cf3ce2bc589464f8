import * as z from 'zod';

/**
 * Resource strings as the orchestrator API writes them (`"0.5"`, `"512m"`, `"10g"`), parsed the
 * way Docker's `RAMInBytes` does: a number, an optional unit (b, k, m, g, t, p), an optional
 * `i` and `b`. Units are binary (1m = 1024 KiB).
 */
const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtp])?(i?b)?\s*$/i;
const UNIT: Record<string, number> = {
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/** Bytes, or undefined when the string is not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text);
  if (!m) return undefined;
  // `12b` alone is bytes; `12bb` or `12ib` is not a size.
  if (m[2]?.toLowerCase() === 'b' && m[3]) return undefined;
  const value = Number(m[1]);
  if (!Number.isFinite(value)) return undefined;
  return value * UNIT[(m[2] ?? 'b').toLowerCase()]!;
}

export const MIB = 1024 ** 2;
export const GIB = 1024 ** 3;

/** Docker refuses memory limits under 6 MiB. */
export const MIN_MEMORY_BYTES = 6 * MIB;

/** Cores, or undefined when the string is not a positive decimal. */
export function parseCpu(text: string): number | undefined {
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text)) return undefined;
  const cores = Number(text);
  return cores > 0 ? cores : undefined;
}

export const MAX_CPU_CORES = 1024;

export const cpuLimit = z
  .string()
  .refine((s) => {
    const c = parseCpu(s);
    return c !== undefined && c <= MAX_CPU_CORES;
  }, `cpu_limit must be a number of cores between 0 and ${MAX_CPU_CORES}, e.g. "0.5"`)
  .describe('CPU limit in cores, as a decimal string: "0.5" is half a core, "2" two cores');

export const memoryLimit = z
  .string()
  .refine((s) => parseSize(s) !== undefined, 'memory_limit must be a size such as "512m" or "1g"')
  .refine((s) => (parseSize(s) ?? MIN_MEMORY_BYTES) >= MIN_MEMORY_BYTES, 'memory_limit must be at least 6m')
  .describe('Memory limit: a number with a binary unit b, k, m, g, t ("512m", "1g"); at least 6m');

export const diskLimit = z
  .string()
  .refine((s) => parseSize(s) !== undefined, 'disk_limit must be a size such as "10g"')
  .refine((s) => (parseSize(s) ?? 1) > 0, 'disk_limit must be greater than 0')
  .describe('Writable layer size limit ("10g"), where the engine’s storage driver supports one');

/** Same grammar as memory_limit, for the registry's `caps.mem`. */
export const memCap = z
  .string()
  .refine((s) => parseSize(s) !== undefined, 'mem must be a size such as "512m"');
export const cpuCap = z
  .string()
  .refine((s) => parseCpu(s) !== undefined, 'cpu must be a number of cores, e.g. "0.5"');

/** Image references: `nginx:alpine`, `192.168.1.214:5000/sdxl-trt:r35.3.1`, `repo@sha256:...`. */
export const imageRef = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@+]*$/, 'invalid image reference')
  .describe('Image reference: "nginx:alpine", "registry.lab:5000/trainer:v1" or "repo@sha256:…"');

export const port = z
  .number()
  .int()
  .min(1, 'port must be between 1 and 65535')
  .max(65535, 'port must be between 1 and 65535');

/** InstanceResources, plus the optional `gpus` count this control plane places on. */
export const instanceResources = z.object({
  cpu_limit: cpuLimit.optional(),
  memory_limit: memoryLimit.optional(),
  disk_limit: diskLimit.optional(),
  gpus: z.number().int().min(0).max(16).optional().describe('Whole GPUs per copy (0 to 16); default 0'),
});
export type InstanceResources = z.infer<typeof instanceResources>;

/** What a container reserves on its node, in planning units. */
export interface Reservation {
  cpu: number;
  memoryMb: number;
  diskGb: number;
  gpus: number;
}

export const NO_RESERVATION: Reservation = { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 };

/** Validated resource strings → engine units. Call only on strings the schemas above accepted. */
export function toReservation(r: InstanceResources): Reservation {
  const mem = r.memory_limit ? parseSize(r.memory_limit) : undefined;
  const disk = r.disk_limit ? parseSize(r.disk_limit) : undefined;
  return {
    cpu: r.cpu_limit ? (parseCpu(r.cpu_limit) ?? 0) : 0,
    memoryMb: mem ? Math.round((mem / MIB) * 100) / 100 : 0,
    diskGb: disk ? Math.round((disk / GIB) * 1000) / 1000 : 0,
    gpus: r.gpus ?? 0,
  };
}

/** The documented `resources` object: only the fields that were set. */
export function resourcesView(r: InstanceResources): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (r.cpu_limit !== undefined) out.cpu_limit = r.cpu_limit;
  if (r.memory_limit !== undefined) out.memory_limit = r.memory_limit;
  if (r.disk_limit !== undefined) out.disk_limit = r.disk_limit;
  if (r.gpus) out.gpus = r.gpus;
  return out;
}

/** The limits a container.update sets (gpus are placed, not limited): those the resources give. */
export interface EngineLimits {
  cpuLimit?: number;
  memoryLimitMb?: number;
  diskLimitGb?: number;
}

export function engineLimits(r: InstanceResources): EngineLimits {
  const res = toReservation(r);
  return {
    ...(res.cpu ? { cpuLimit: res.cpu } : {}),
    ...(res.memoryMb ? { memoryLimitMb: res.memoryMb } : {}),
    ...(res.diskGb ? { diskLimitGb: res.diskGb } : {}),
  };
}

export const sameLimits = (a: EngineLimits, b: EngineLimits) =>
  a.cpuLimit === b.cpuLimit && a.memoryLimitMb === b.memoryLimitMb && a.diskLimitGb === b.diskLimitGb;
