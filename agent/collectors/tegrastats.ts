import { spawn } from 'node:child_process';

export interface TegrastatsCpu {
  loadPercent: number;
  /** Null on releases that print only `N%`. */
  freqMHz: number | null;
}

export interface PowerRail {
  currentMw: number;
  averageMw: number;
}

export interface TegrastatsSample {
  ramUsedMB: number;
  ramTotalMB: number;
  swapUsedMB: number | null;
  swapTotalMB: number | null;
  /** One entry per core in printed order; null for a core printed as `off`. */
  cpus: Array<TegrastatsCpu | null>;
  /** GR3D_FREQ load. */
  gpuLoadPercent: number | null;
  /** GR3D_FREQ clock; with a per-GPC list (`0%@[305,305]`) the highest entry. */
  gpuFreqMHz: number | null;
  emcPercent: number | null;
  emcFreqMHz: number | null;
  /** Zone names as printed (`CPU` on older releases, `cpu` on newer); null for an offline sensor (-256C). */
  temperatures: Record<string, number | null>;
  /** Rails as printed; values in mW (older releases print them without the unit). */
  powerRails: Record<string, PowerRail>;
}

const OFFLINE_SENSOR_C = -256;

const RAM_RE = /\bRAM (\d+)\/(\d+)([kMG])B\b/;
const SWAP_RE = /\bSWAP (\d+)\/(\d+)([kMG])B\b/;
const CPU_RE = /\bCPU \[([^\]]*)\]/;
const CPU_ENTRY_RE = /^(\d+)%(?:@(\d+))?$/;
const GR3D_RE = /\bGR3D_FREQ (\d+)%(?:@(?:\[([\d,]*)\]|(\d+)))?/;
const EMC_RE = /\bEMC_FREQ (\d+)%(?:@(\d+))?/;
// `tj@42.593C`, `CV0@-256C`, JetPack 7's `cpu@52.968C/52.968C` (the first value is kept).
const TEMP_RE = /(?<=^|\s)([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C(?:\/-?\d+(?:\.\d+)?C)?(?=\s|$)/g;
// `VDD_GPU_SOC 2399mW/2399mW` (JetPack 5+), `GPU 463/463` and `POM_5V_IN 4520/4680` (JetPack 4).
const RAIL_RE = /(?<=^|\s)([A-Za-z][\w]*) (\d+)(?:mW)?\/(\d+)(?:mW)?(?=\s|$)/g;

function toMB(value: string, unit: string | undefined): number {
  const n = Number(value);
  if (unit === 'k') return n / 1024;
  if (unit === 'G') return n * 1024;
  return n;
}

function parseCpus(list: string): Array<TegrastatsCpu | null> {
  const cpus: Array<TegrastatsCpu | null> = [];
  for (const entry of list.split(',').map((e) => e.trim())) {
    if (entry === 'off') {
      cpus.push(null);
      continue;
    }
    const m = CPU_ENTRY_RE.exec(entry);
    // Anything else (the `...` of abridged samples) is not a core reading.
    if (!m) continue;
    cpus.push({ loadPercent: Number(m[1]), freqMHz: m[2] === undefined ? null : Number(m[2]) });
  }
  return cpus;
}

/**
 * Parses one line of `tegrastats` output (JetPack 4 to 7: TX2, Nano, Xavier, Orin, Thor).
 * A leading timestamp is ignored. Returns null when the line has no `RAM used/total` field,
 * i.e. is not a tegrastats sample.
 */
export function parseTegrastats(line: string): TegrastatsSample | null {
  const text = line.trim();
  const ram = RAM_RE.exec(text);
  if (!ram) return null;
  const swap = SWAP_RE.exec(text);
  const cpu = CPU_RE.exec(text);
  const gr3d = GR3D_RE.exec(text);
  const emc = EMC_RE.exec(text);

  let gpuFreqMHz: number | null = null;
  if (gr3d?.[2] !== undefined) {
    const freqs = gr3d[2]
      .split(',')
      .filter((s) => s !== '')
      .map(Number);
    gpuFreqMHz = freqs.length > 0 ? Math.max(...freqs) : null;
  } else if (gr3d?.[3] !== undefined) {
    gpuFreqMHz = Number(gr3d[3]);
  }

  const temperatures: Record<string, number | null> = {};
  for (const m of text.matchAll(TEMP_RE)) {
    const [, zone, value] = m;
    if (zone === undefined || value === undefined) continue;
    const celsius = Number(value);
    temperatures[zone] = celsius <= OFFLINE_SENSOR_C ? null : celsius;
  }

  const powerRails: Record<string, PowerRail> = {};
  for (const m of text.matchAll(RAIL_RE)) {
    const [, rail, current, average] = m;
    if (rail === undefined || current === undefined || average === undefined) continue;
    powerRails[rail] = { currentMw: Number(current), averageMw: Number(average) };
  }

  return {
    ramUsedMB: toMB(ram[1] ?? '0', ram[3]),
    ramTotalMB: toMB(ram[2] ?? '0', ram[3]),
    swapUsedMB: swap ? toMB(swap[1] ?? '0', swap[3]) : null,
    swapTotalMB: swap ? toMB(swap[2] ?? '0', swap[3]) : null,
    cpus: cpu?.[1] !== undefined ? parseCpus(cpu[1]) : [],
    gpuLoadPercent: gr3d ? Number(gr3d[1]) : null,
    gpuFreqMHz,
    emcPercent: emc ? Number(emc[1]) : null,
    emcFreqMHz: emc?.[2] !== undefined ? Number(emc[2]) : null,
    temperatures,
    powerRails,
  };
}

export const TEGRASTATS_COMMAND: readonly [string, ...string[]] = ['tegrastats', '--interval', '1000'];

export type TegrastatsErrorReason = 'timeout' | 'exit' | 'spawn' | 'parse';

export class TegrastatsError extends Error {
  override readonly name = 'TegrastatsError';
  readonly reason: TegrastatsErrorReason;

  constructor(reason: TegrastatsErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface CollectTegrastatsOptions {
  /** argv to run; tests point it at a stand-in. */
  command?: readonly [string, ...string[]];
  /** How long to wait for the first line. */
  timeoutMs?: number;
}

export const TEGRASTATS_TIMEOUT_MS = 5_000;
// tegrastats exits on SIGTERM; SIGKILL only if it has not after this long.
const KILL_GRACE_MS = 1_000;

/**
 * Starts tegrastats, takes its first line, and stops it.
 * - Resolves to null when tegrastats is not installed (not a Jetson).
 * - Rejects with {@link TegrastatsError} when it prints nothing within `timeoutMs`, exits first,
 *   cannot be started, or prints a first line that is not a sample.
 * The child is always signalled before this settles.
 */
export function collectTegrastatsOnce(
  options: CollectTegrastatsOptions = {},
): Promise<TegrastatsSample | null> {
  const [file, ...args] = options.command ?? TEGRASTATS_COMMAND;
  const timeoutMs = options.timeoutMs ?? TEGRASTATS_TIMEOUT_MS;

  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const timer = setTimeout(function tegrastatsTimedOut() {
      settle({ error: new TegrastatsError('timeout', `tegrastats printed nothing within ${timeoutMs} ms`) });
    }, timeoutMs);

    function stopChild(): void {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const forceKill = setTimeout(function forceKillTegrastats() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, KILL_GRACE_MS);
      forceKill.unref();
      child.once('exit', () => clearTimeout(forceKill));
    }

    function settle(outcome: { value: TegrastatsSample | null } | { error: Error }): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopChild();
      if ('error' in outcome) reject(outcome.error);
      else resolve(outcome.value);
    }

    child.once('error', function onTegrastatsError(error: NodeJS.ErrnoException) {
      if (error.code === 'ENOENT') settle({ value: null });
      else settle({ error: new TegrastatsError('spawn', `tegrastats could not start: ${error.message}`) });
    });

    function settleWithLine(line: string): void {
      const sample = parseTegrastats(line);
      if (sample) settle({ value: sample });
      else settle({ error: new TegrastatsError('parse', `not a tegrastats line: ${line.slice(0, 200)}`) });
    }

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', function onTegrastatsData(chunk: string) {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline >= 0) settleWithLine(stdout.slice(0, newline));
    });

    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });

    child.once('close', function onTegrastatsClose(code, signal) {
      // A last line without its newline still counts.
      if (stdout.trim() !== '') {
        settleWithLine(stdout.trim());
        return;
      }
      const detail = stderr.trim().split(/\r?\n/)[0] ?? '';
      settle({
        error: new TegrastatsError(
          'exit',
          `tegrastats exited with ${code ?? signal ?? 'unknown status'} before printing a line${detail ? `: ${detail}` : ''}`,
        ),
      });
    });
  });
}
