import { classifyExecError, execFileText, type ExecFailureKind, type ExecFn } from './exec.js';

/** Query fields in the order the parser expects them. */
export const NVIDIA_SMI_FIELDS = [
  'index',
  'uuid',
  'name',
  'utilization.gpu',
  'utilization.memory',
  'memory.total',
  'memory.used',
  'memory.free',
  'temperature.gpu',
  'power.draw',
  'power.limit',
  'clocks.sm',
  'clocks.mem',
  'fan.speed',
  'pstate',
  'driver_version',
] as const;

/** The exact command, as argv (no shell). */
export const NVIDIA_SMI_COMMAND: readonly [string, ...string[]] = [
  'nvidia-smi',
  `--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`,
  '--format=csv,noheader,nounits',
];

export interface GpuInfo {
  index: number;
  uuid: string | null;
  name: string;
  /** Percent. */
  utilizationGpu: number | null;
  /** Percent of time the memory controller was busy, not memory used. */
  utilizationMemory: number | null;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  temperatureC: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
  clockSmMHz: number | null;
  clockMemMHz: number | null;
  fanPercent: number | null;
  /** 'P0'..'P12'. */
  pstate: string | null;
  driverVersion: string | null;
}

export interface NvidiaSmiParseResult {
  gpus: GpuInfo[];
  /** Non-blank lines that were not GPU rows (driver messages, truncated rows). */
  unparsed: string[];
}

const FIELD_COUNT = NVIDIA_SMI_FIELDS.length;
// With `nounits` values are bare; accept units too so output taken without it still parses.
const NUMBER_RE = /^(-?\d+(?:\.\d+)?)(?:\s*(?:%|MiB|W|MHz|C))?$/;

/**
 * `[N/A]`, `[Not Supported]` and the other bracketed states (`[Unknown Error]`,
 * `[Insufficient Permissions]`...), bare `N/A` and empty fields all mean "no value".
 */
function isMissing(raw: string): boolean {
  return raw === '' || raw === 'N/A' || (raw.startsWith('[') && raw.endsWith(']'));
}

function numberField(raw: string): number | null {
  if (isMissing(raw)) return null;
  const m = NUMBER_RE.exec(raw);
  return m?.[1] === undefined ? null : Number(m[1]);
}

function textField(raw: string): string | null {
  return isMissing(raw) ? null : raw;
}

function parseRow(line: string): GpuInfo | null {
  let fields = line.split(',').map((f) => f.trim());
  if (fields.length < FIELD_COUNT) return null;
  if (fields.length > FIELD_COUNT) {
    // A comma inside the product name: give the extra pieces back to `name`.
    const extra = fields.length - FIELD_COUNT;
    fields = [...fields.slice(0, 2), fields.slice(2, 3 + extra).join(', '), ...fields.slice(3 + extra)];
  }
  const f = (i: number): string => fields[i] ?? '';
  if (!/^\d+$/.test(f(0))) return null;
  return {
    index: Number(f(0)),
    uuid: textField(f(1)),
    name: f(2),
    utilizationGpu: numberField(f(3)),
    utilizationMemory: numberField(f(4)),
    memoryTotalMiB: numberField(f(5)),
    memoryUsedMiB: numberField(f(6)),
    memoryFreeMiB: numberField(f(7)),
    temperatureC: numberField(f(8)),
    powerDrawW: numberField(f(9)),
    powerLimitW: numberField(f(10)),
    clockSmMHz: numberField(f(11)),
    clockMemMHz: numberField(f(12)),
    fanPercent: numberField(f(13)),
    pstate: textField(f(14)),
    driverVersion: textField(f(15)),
  };
}

/** Parses the output of {@link NVIDIA_SMI_COMMAND}, keeping lines it could not read. */
export function parseNvidiaSmiOutput(text: string): NvidiaSmiParseResult {
  const gpus: GpuInfo[] = [];
  const unparsed: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '') continue;
    // Output taken without `noheader` starts with the column names.
    if (line.startsWith('index,')) continue;
    const gpu = parseRow(line);
    if (gpu) gpus.push(gpu);
    else unparsed.push(line);
  }
  return { gpus, unparsed };
}

/** Parses the output of {@link NVIDIA_SMI_COMMAND}; lines that are not GPU rows are skipped. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  return parseNvidiaSmiOutput(text).gpus;
}

export type NvidiaSmiErrorReason = Exclude<ExecFailureKind, 'not-found'> | 'parse';

/**
 * nvidia-smi exists but did not give a clean answer: it timed out, exited non-zero (driver not
 * loaded, GPU lost), could not be started, or printed lines that are not GPU rows.
 * `gpus` holds the rows that did parse, so a caller can still report the healthy GPUs.
 */
export class NvidiaSmiError extends Error {
  override readonly name = 'NvidiaSmiError';
  readonly reason: NvidiaSmiErrorReason;
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly gpus: GpuInfo[];
  readonly unparsed: string[];

  constructor(
    message: string,
    details: {
      reason: NvidiaSmiErrorReason;
      exitCode: number | null;
      stderr: string;
      gpus: GpuInfo[];
      unparsed: string[];
    },
  ) {
    super(message);
    this.reason = details.reason;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
    this.gpus = details.gpus;
    this.unparsed = details.unparsed;
  }
}

export interface CollectNvidiaGpusOptions {
  exec?: ExecFn;
  timeoutMs?: number;
}

export const NVIDIA_SMI_TIMEOUT_MS = 10_000;

/**
 * Runs nvidia-smi once.
 * - nvidia-smi not installed (ENOENT): resolves to [] — this host has no NVIDIA driver.
 * - Clean run: resolves to one {@link GpuInfo} per GPU.
 * - Anything else (timeout, non-zero exit, spawn failure, unreadable lines): rejects with
 *   {@link NvidiaSmiError}, because a GPU host whose driver misbehaves must not look GPU-less.
 */
export async function collectNvidiaGpus(options: CollectNvidiaGpusOptions = {}): Promise<GpuInfo[]> {
  const exec = options.exec ?? execFileText;
  const timeoutMs = options.timeoutMs ?? NVIDIA_SMI_TIMEOUT_MS;
  const [file, ...args] = NVIDIA_SMI_COMMAND;
  let stdout: string;
  try {
    ({ stdout } = await exec(file, args, { timeoutMs }));
  } catch (error) {
    const failure = classifyExecError(error);
    if (failure.kind === 'not-found') return [];
    const partial = parseNvidiaSmiOutput(failure.stdout);
    const detail = (failure.stderr.trim() || failure.stdout.trim()).split(/\r?\n/)[0] ?? '';
    const what =
      failure.kind === 'timeout'
        ? `timed out after ${timeoutMs} ms`
        : failure.kind === 'exit'
          ? `exited with ${failure.exitCode ?? failure.signal ?? 'unknown status'}`
          : `could not start: ${failure.message}`;
    throw new NvidiaSmiError(`nvidia-smi ${what}${detail ? `: ${detail}` : ''}`, {
      reason: failure.kind,
      exitCode: failure.exitCode,
      stderr: failure.stderr,
      gpus: partial.gpus,
      unparsed: partial.unparsed,
    });
  }
  const result = parseNvidiaSmiOutput(stdout);
  if (result.unparsed.length > 0) {
    throw new NvidiaSmiError(
      `nvidia-smi printed ${result.unparsed.length} unreadable line(s): ${result.unparsed[0] ?? ''}`,
      { reason: 'parse', exitCode: 0, stderr: '', gpus: result.gpus, unparsed: result.unparsed },
    );
  }
  return result.gpus;
}
