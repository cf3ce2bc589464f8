import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  collectTegrastatsOnce,
  parseTegrastats,
  TEGRASTATS_COMMAND,
  TegrastatsError,
} from '../../../../agent/collectors/tegrastats.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/agent/tegrastats/${name}`, import.meta.url), 'utf8');

describe('parseTegrastats', () => {
  it('reads AGX Orin, JetPack 5', () => {
    // Act
    const sample = parseTegrastats(fixture('orin-jp5.txt'));

    // Assess
    expect(sample).toEqual({
      ramUsedMB: 1282,
      ramTotalMB: 62795,
      swapUsedMB: 0,
      swapTotalMB: 31398,
      cpus: [
        { loadPercent: 0, freqMHz: 729 },
        { loadPercent: 0, freqMHz: 729 },
        null,
        null,
        { loadPercent: 3, freqMHz: 729 },
        { loadPercent: 1, freqMHz: 729 },
        { loadPercent: 0, freqMHz: 729 },
        { loadPercent: 0, freqMHz: 729 },
        null,
        null,
        null,
        null,
      ],
      gpuLoadPercent: 0,
      gpuFreqMHz: 0,
      emcPercent: 0,
      emcFreqMHz: 2133,
      temperatures: { CV0: null, CPU: 42.593, Tboard: 32, SOC2: 39.343, GPU: null, tj: 42.593 },
      powerRails: {
        VDD_GPU_SOC: { currentMw: 2399, averageMw: 2399 },
        VDD_CPU_CV: { currentMw: 400, averageMw: 400 },
        VIN_SYS_5V0: { currentMw: 4032, averageMw: 4032 },
      },
    });
  });

  it('reads the abridged notes line, skipping the `...` placeholder', () => {
    const sample = parseTegrastats(fixture('orin-jp5-notes.txt'));
    expect(sample?.cpus).toEqual([{ loadPercent: 0, freqMHz: 729 }, { loadPercent: 0, freqMHz: 729 }, null]);
    expect(sample?.temperatures['GPU']).toBeNull();
    expect(Object.keys(sample?.powerRails ?? {})).toEqual(['VDD_GPU_SOC', 'VDD_CPU_CV', 'VIN_SYS_5V0']);
  });

  it('reads newer Orin: timestamp, per-GPC GR3D list, lower-case zones', () => {
    const sample = parseTegrastats(fixture('orin-jp6.txt'));
    expect(sample).toMatchObject({
      ramUsedMB: 2950,
      ramTotalMB: 30536,
      gpuLoadPercent: 7,
      gpuFreqMHz: 611,
      emcPercent: 0,
      emcFreqMHz: 2133,
      temperatures: { cpu: 53.062, soc2: 49.031, soc0: 50.5, gpu: 47.812, tj: 53.062, soc1: 49.593 },
      powerRails: {
        VDD_GPU_SOC: { currentMw: 3573, averageMw: 3573 },
        VDD_CPU_CV: { currentMw: 797, averageMw: 797 },
        VIN_SYS_5V0: { currentMw: 4839, averageMw: 4839 },
      },
    });
    expect(sample?.cpus).toHaveLength(8);
    expect(sample?.cpus[6]).toBeNull();
  });

  it('reads JetPack 7 `zone@X.XC/Y.YC` temperatures, keeping the first value', () => {
    const sample = parseTegrastats(fixture('thor-jp7.txt'));
    expect(sample?.temperatures).toEqual({ cpu: 52.968, gpu: 48.25, tj: 53.5, soc: null });
    expect(sample).toMatchObject({
      swapUsedMB: 0,
      swapTotalMB: 0,
      gpuLoadPercent: 0,
      gpuFreqMHz: 1575,
      emcPercent: null,
      emcFreqMHz: null,
    });
    expect(sample?.cpus).toHaveLength(14);
    expect(sample?.powerRails).toEqual({
      VDD_GPU: { currentMw: 0, averageMw: 0 },
      VIN_SYS_5V0: { currentMw: 7120, averageMw: 7120 },
    });
  });

  it('reads AGX Xavier, JetPack 4: unitless rails and load without frequency', () => {
    const sample = parseTegrastats(fixture('xavier-jp4.txt'));
    expect(sample).toMatchObject({
      ramUsedMB: 14700,
      ramTotalMB: 15692,
      swapUsedMB: 898,
      swapTotalMB: 8192,
      gpuLoadPercent: 0,
      gpuFreqMHz: null,
      emcPercent: 0,
      emcFreqMHz: null,
      temperatures: { AO: 30, GPU: 30.5, Tboard: 31, CPU: 31.5, thermal: 30.8 },
      powerRails: {
        GPU: { currentMw: 463, averageMw: 463 },
        CPU: { currentMw: 618, averageMw: 618 },
        SOC: { currentMw: 2936, averageMw: 2936 },
        CV: { currentMw: 0, averageMw: 0 },
        VDDRQ: { currentMw: 309, averageMw: 309 },
        SYS5V: { currentMw: 3306, averageMw: 3306 },
      },
    });
    expect(sample?.cpus.slice(0, 2)).toEqual([
      { loadPercent: 0, freqMHz: 1190 },
      { loadPercent: 2, freqMHz: 1190 },
    ]);
  });

  it('reads the abridged Xavier notes line', () => {
    const sample = parseTegrastats(fixture('xavier-jp4-notes.txt'));
    expect(sample?.cpus).toEqual([{ loadPercent: 0, freqMHz: 1190 }]);
    expect(sample?.powerRails['SYS5V']).toEqual({ currentMw: 3306, averageMw: 3306 });
  });

  it('reads Nano POM_ rails and ignores IRAM', () => {
    const sample = parseTegrastats(fixture('nano-jp4.txt'));
    expect(sample?.powerRails).toEqual({
      POM_5V_IN: { currentMw: 4520, averageMw: 4680 },
      POM_5V_GPU: { currentMw: 41, averageMw: 41 },
      POM_5V_CPU: { currentMw: 1078, averageMw: 1205 },
    });
    expect(sample).toMatchObject({ ramUsedMB: 1180, ramTotalMB: 3964, gpuLoadPercent: 0, gpuFreqMHz: 76 });
    expect(sample?.cpus).toEqual([
      { loadPercent: 12, freqMHz: 1479 },
      { loadPercent: 8, freqMHz: 1479 },
      null,
      null,
    ]);
  });

  it('reads TX2 VDD_SYS_ rails', () => {
    const sample = parseTegrastats(fixture('tx2-jp4.txt'));
    expect(sample?.powerRails['VDD_SYS_GPU']).toEqual({ currentMw: 153, averageMw: 158 });
    expect(sample?.powerRails['VDD_IN']).toEqual({ currentMw: 3140, averageMw: 3208 });
    expect(Object.keys(sample?.powerRails ?? {})).toHaveLength(6);
    expect(sample?.temperatures).toMatchObject({ BCPU: 34, MCPU: 34, PMIC: 100, Tdiode: 31.75 });
    expect(sample?.cpus.map((c) => c?.loadPercent ?? 'off')).toEqual([3, 'off', 'off', 1, 2, 1]);
  });

  it('returns null for text that is not a tegrastats sample', () => {
    expect(parseTegrastats('')).toBeNull();
    expect(parseTegrastats('tegrastats: command not found')).toBeNull();
  });

  it('converts kB and GB memory units to MB', () => {
    expect(parseTegrastats('RAM 512/2048kB SWAP 1/2GB')).toMatchObject({
      ramUsedMB: 0.5,
      ramTotalMB: 2,
      swapUsedMB: 1024,
      swapTotalMB: 2048,
    });
  });
});

describe('collectTegrastatsOnce', () => {
  const node = process.execPath;
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function waitUntilGone(pid: number, withinMs: number): Promise<boolean> {
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
      await sleep(25);
    }
    return false;
  }

  it('runs tegrastats at a 1 s interval by default', () => {
    expect(TEGRASTATS_COMMAND).toEqual(['tegrastats', '--interval', '1000']);
  });

  it('returns the first sample and stops the process', async () => {
    // Prepare: a stand-in that records its pid, prints two lines, then keeps running.
    dir = mkdtempSync(join(tmpdir(), 'tegrastats-'));
    const pidFile = join(dir, 'pid');
    const line = fixture('orin-jp5.txt').trim();
    const script = `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      console.log(${JSON.stringify(line)}); console.log('RAM 1/2MB'); setInterval(() => {}, 1000);`;

    // Act
    const sample = await collectTegrastatsOnce({ command: [node, '-e', script], timeoutMs: 10_000 });

    // Assess
    expect(sample?.ramUsedMB).toBe(1282);
    expect(sample?.powerRails['VIN_SYS_5V0']).toEqual({ currentMw: 4032, averageMw: 4032 });
    expect(await waitUntilGone(Number(readFileSync(pidFile, 'utf8')), 5_000)).toBe(true);
  });

  it('force-kills a process that ignores SIGTERM', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tegrastats-'));
    const pidFile = join(dir, 'pid');
    const script = `process.on('SIGTERM', () => {});
      require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      console.log('RAM 100/200MB CPU [1%@100]'); setInterval(() => {}, 1000);`;

    const sample = await collectTegrastatsOnce({ command: [node, '-e', script], timeoutMs: 10_000 });

    expect(sample).toMatchObject({
      ramUsedMB: 100,
      ramTotalMB: 200,
      cpus: [{ loadPercent: 1, freqMHz: 100 }],
    });
    expect(await waitUntilGone(Number(readFileSync(pidFile, 'utf8')), 5_000)).toBe(true);
  });

  it('returns null when tegrastats is not installed (not a Jetson)', async () => {
    await expect(
      collectTegrastatsOnce({ command: ['no-such-tegrastats-for-agent-tests'] }),
    ).resolves.toBeNull();
  });

  it('rejects with reason "timeout" when nothing is printed in time', async () => {
    const error = await collectTegrastatsOnce({
      command: [node, '-e', 'setInterval(() => {}, 1000)'],
      timeoutMs: 300,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TegrastatsError);
    expect(error).toMatchObject({ reason: 'timeout', message: 'tegrastats printed nothing within 300 ms' });
  });

  it('rejects with reason "exit" when it exits before a line, quoting stderr', async () => {
    await expect(
      collectTegrastatsOnce({
        command: [node, '-e', 'console.error("Error: run as root"); process.exit(3)'],
        timeoutMs: 10_000,
      }),
    ).rejects.toMatchObject({
      reason: 'exit',
      message: 'tegrastats exited with 3 before printing a line: Error: run as root',
    });
  });

  it('rejects with reason "parse" when the first line is not a sample', async () => {
    await expect(
      collectTegrastatsOnce({ command: [node, '-e', 'console.log("hello")'], timeoutMs: 10_000 }),
    ).rejects.toMatchObject({ reason: 'parse', message: 'not a tegrastats line: hello' });
  });

  it('accepts a last line without a newline', async () => {
    const sample = await collectTegrastatsOnce({
      command: [node, '-e', 'process.stdout.write("RAM 5/10MB")'],
      timeoutMs: 10_000,
    });
    expect(sample).toMatchObject({ ramUsedMB: 5, ramTotalMB: 10, swapUsedMB: null, cpus: [] });
  });
});
