import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ExecFn } from '../../../../agent/collectors/exec.js';
import {
  collectNvidiaGpus,
  NVIDIA_SMI_COMMAND,
  NvidiaSmiError,
  parseNvidiaSmi,
  parseNvidiaSmiOutput,
} from '../../../../agent/collectors/nvidia-smi.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/agent/nvidia-smi/${name}`, import.meta.url), 'utf8');

/** An exec stand-in that records its call and answers from `answer`. */
function fakeExec(
  answer: () => Promise<{ stdout: string; stderr: string }>,
): ExecFn & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  const exec = (async (file, args, options) => {
    calls.push([file, [...args], options]);
    return answer();
  }) as ExecFn & { calls: unknown[][] };
  exec.calls = calls;
  return exec;
}

function execError(props: Record<string, unknown>, message = 'Command failed'): Error {
  return Object.assign(new Error(message), { stdout: '', stderr: '' }, props);
}

describe('NVIDIA_SMI_COMMAND', () => {
  it('is the documented query as argv', () => {
    expect(NVIDIA_SMI_COMMAND).toEqual([
      'nvidia-smi',
      '--query-gpu=index,uuid,name,utilization.gpu,utilization.memory,memory.total,memory.used,memory.free,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem,fan.speed,pstate,driver_version',
      '--format=csv,noheader,nounits',
    ]);
  });
});

describe('parseNvidiaSmi', () => {
  it('reads the line recorded on an H100', () => {
    // Prepare
    const text = fixture('h100.csv');

    // Act
    const gpus = parseNvidiaSmi(text);

    // Assess
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-6c78bd80-cf57-c6ce-bc6e-5433b17443bf',
        name: 'NVIDIA H100 80GB HBM3',
        utilizationGpu: 0,
        utilizationMemory: 0,
        memoryTotalMiB: 81559,
        memoryUsedMiB: 0,
        memoryFreeMiB: 81079,
        temperatureC: 34,
        powerDrawW: 124.23,
        powerLimitW: 700,
        clockSmMHz: 1980,
        clockMemMHz: 2619,
        fanPercent: null,
        pstate: 'P0',
        driverVersion: '580.159.04',
      },
    ]);
  });

  it('reads the line from the notes', () => {
    const [gpu] = parseNvidiaSmi(fixture('h100-notes.csv'));
    expect(gpu).toMatchObject({
      uuid: 'GPU-6135f477-c8f7-b3de-70b0-1a7659b72dd5',
      temperatureC: 41,
      powerDrawW: 129.41,
      fanPercent: null,
    });
  });

  it('gives the same values for output taken with header and units', () => {
    const withUnits = parseNvidiaSmiOutput(fixture('h100-with-units-header.csv'));
    expect(withUnits.unparsed).toEqual([]);
    expect(withUnits.gpus).toHaveLength(1);
    expect(withUnits.gpus[0]).toMatchObject({
      utilizationGpu: 0,
      memoryTotalMiB: 81559,
      powerDrawW: 124.24,
      clockSmMHz: 1980,
      fanPercent: null,
    });
  });

  it('maps [N/A] and [Not Supported] to null, never 0, across several GPUs', () => {
    const gpus = parseNvidiaSmi(fixture('multi-gpu.csv'));

    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3]);
    expect(gpus[0]).toMatchObject({
      utilizationGpu: 87,
      utilizationMemory: 42,
      memoryUsedMiB: 61234,
      powerDrawW: 312.55,
    });
    // MIG mode: utilisation is [N/A].
    expect(gpus[1]).toMatchObject({ utilizationGpu: null, utilizationMemory: null, memoryUsedMiB: 13 });
    // Consumer card: power is [Not Supported], fan is real.
    expect(gpus[2]).toMatchObject({
      name: 'NVIDIA GeForce RTX 3090',
      powerDrawW: null,
      powerLimitW: null,
      fanPercent: 30,
      pstate: 'P2',
    });
    expect(gpus[3]).toMatchObject({ name: 'Tesla T4', powerLimitW: 70, pstate: 'P8', fanPercent: null });
    expect(gpus.every((g) => g.driverVersion === '550.54.15')).toBe(true);
  });

  it('reads a Jetson row where almost everything is [N/A]', () => {
    expect(parseNvidiaSmi(fixture('jetson-orin.csv'))).toEqual([
      {
        index: 0,
        uuid: 'GPU-c1a2b3c4-d5e6-f708-192a-3b4c5d6e7f80',
        name: 'Orin (nvgpu)',
        utilizationGpu: null,
        utilizationMemory: null,
        memoryTotalMiB: null,
        memoryUsedMiB: null,
        memoryFreeMiB: null,
        temperatureC: null,
        powerDrawW: null,
        powerLimitW: null,
        clockSmMHz: null,
        clockMemMHz: null,
        fanPercent: null,
        pstate: null,
        driverVersion: '540.4.0',
      },
    ]);
  });

  it('treats bare N/A, empty fields and other bracketed states as null', () => {
    const [gpu] = parseNvidiaSmi(
      '0, [N/A], Tesla V100, N/A, , [Unknown Error], [Insufficient Permissions], 1, 45, ERR!, 300.00, 1380, 877, N/A, P0, 535.1\n',
    );
    expect(gpu).toMatchObject({
      uuid: null,
      utilizationGpu: null,
      utilizationMemory: null,
      memoryTotalMiB: null,
      memoryUsedMiB: null,
      memoryFreeMiB: 1,
      temperatureC: 45,
      powerDrawW: null,
      fanPercent: null,
    });
  });

  it('is robust to CRLF, blank lines and surrounding whitespace', () => {
    const lf = fixture('multi-gpu.csv');
    const crlf = `\r\n\r\n  ${lf.replace(/\n/g, '\r\n')}\r\n\r\n`;
    expect(parseNvidiaSmi(crlf)).toEqual(parseNvidiaSmi(lf));
    expect(parseNvidiaSmi(crlf)).toHaveLength(4);
  });

  it('returns [] for empty output', () => {
    expect(parseNvidiaSmi('')).toEqual([]);
    expect(parseNvidiaSmi('\n\r\n')).toEqual([]);
  });

  it('keeps a comma inside the product name', () => {
    const [gpu] = parseNvidiaSmi(
      '0, GPU-x, Acme GPU, Rev B, 1, 2, 100, 10, 90, 40, 50.5, 100.00, 1000, 2000, 20, P0, 550.1',
    );
    expect(gpu).toMatchObject({
      name: 'Acme GPU, Rev B',
      utilizationGpu: 1,
      fanPercent: 20,
      driverVersion: '550.1',
    });
  });

  it('reports lines that are not GPU rows instead of guessing', () => {
    const result = parseNvidiaSmiOutput(fixture('gpu-lost.txt'));
    expect(result.gpus.map((g) => g.index)).toEqual([0]);
    expect(result.unparsed).toEqual([
      'Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error',
    ]);
  });
});

describe('collectNvidiaGpus', () => {
  it('runs the query command with a timeout and parses its output', async () => {
    // Prepare
    const exec = fakeExec(async () => ({ stdout: fixture('multi-gpu.csv'), stderr: '' }));

    // Act
    const gpus = await collectNvidiaGpus({ exec, timeoutMs: 1234 });

    // Assess
    expect(exec.calls).toEqual([[NVIDIA_SMI_COMMAND[0], NVIDIA_SMI_COMMAND.slice(1), { timeoutMs: 1234 }]]);
    expect(gpus).toHaveLength(4);
  });

  it('returns [] when nvidia-smi is not installed', async () => {
    const exec = fakeExec(() =>
      Promise.reject(
        execError({ code: 'ENOENT', errno: -2, syscall: 'spawn nvidia-smi' }, 'spawn nvidia-smi ENOENT'),
      ),
    );
    await expect(collectNvidiaGpus({ exec })).resolves.toEqual([]);
  });

  it('rejects with reason "exit" when the driver is not loaded', async () => {
    const exec = fakeExec(() =>
      Promise.reject(
        execError({ code: 9, killed: false, signal: null, stdout: fixture('driver-not-loaded.txt') }),
      ),
    );

    const error = await collectNvidiaGpus({ exec }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NvidiaSmiError);
    expect(error).toMatchObject({ reason: 'exit', exitCode: 9, gpus: [] });
    expect((error as Error).message).toBe(
      "nvidia-smi exited with 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
    );
  });

  it('rejects with reason "timeout" when the command hangs', async () => {
    const exec = fakeExec(() => Promise.reject(execError({ code: null, killed: true, signal: 'SIGKILL' })));
    await expect(collectNvidiaGpus({ exec, timeoutMs: 50 })).rejects.toMatchObject({
      name: 'NvidiaSmiError',
      reason: 'timeout',
      message: 'nvidia-smi timed out after 50 ms',
    });
  });

  it('keeps the healthy GPUs on the error when one is lost', async () => {
    const exec = fakeExec(() =>
      Promise.reject(execError({ code: 15, killed: false, signal: null, stdout: fixture('gpu-lost.txt') })),
    );
    const error = (await collectNvidiaGpus({ exec }).catch((e: unknown) => e)) as NvidiaSmiError;
    expect(error.reason).toBe('exit');
    expect(error.gpus.map((g) => g.uuid)).toEqual(['GPU-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718']);
    expect(error.unparsed).toHaveLength(1);
  });

  it('rejects with reason "parse" when a clean exit prints unreadable lines', async () => {
    const exec = fakeExec(async () => ({ stdout: fixture('gpu-lost.txt'), stderr: '' }));
    await expect(collectNvidiaGpus({ exec })).rejects.toMatchObject({ reason: 'parse', exitCode: 0 });
  });

  it('rejects with reason "spawn" when nvidia-smi cannot be started', async () => {
    const exec = fakeExec(() => Promise.reject(execError({ code: 'EACCES' }, 'spawn nvidia-smi EACCES')));
    await expect(collectNvidiaGpus({ exec })).rejects.toMatchObject({
      reason: 'spawn',
      message: 'nvidia-smi could not start: spawn nvidia-smi EACCES',
    });
  });
});
