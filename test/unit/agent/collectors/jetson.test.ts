import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ExecFn } from '../../../../agent/collectors/exec.js';
import {
  collectJetsonInfo,
  cudnnVersionFromPackage,
  installedPackageVersion,
  jetpackMajorForL4t,
  jetpackVersionFromPackage,
  l4tVersionFromPackage,
  parseAptCacheShowJetpack,
  parseCudaVersionJson,
  parseCudaVersionTxt,
  parseCudnnVersionHeader,
  parseDebControl,
  parseNvccVersion,
  parseNvTegraRelease,
} from '../../../../agent/collectors/jetson.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/agent/', import.meta.url));
const root = (name: string): string => join(fixtures, 'roots', name);
const fixture = (path: string): string => readFileSync(join(fixtures, path), 'utf8');

describe('parseNvTegraRelease', () => {
  it('reads R35 REVISION 4.1 as L4T 35.4.1', () => {
    const text =
      '# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n# KERNEL_VARIANT: oot\n';
    expect(parseNvTegraRelease(text)).toEqual({ version: '35.4.1', major: 35, board: 't186ref' });
  });

  it('reads R32 and R36 first lines', () => {
    expect(parseNvTegraRelease(fixture('roots/nano-jp4/etc/nv_tegra_release'))).toEqual({
      version: '32.7.1',
      major: 32,
      board: 't210ref',
    });
    expect(
      parseNvTegraRelease(
        '# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, DATE: x',
      ),
    ).toEqual({ version: '36.3.0', major: 36, board: 'generic' });
  });

  it('returns null for anything else', () => {
    expect(parseNvTegraRelease('')).toBeNull();
    expect(parseNvTegraRelease('R35.4.1')).toBeNull();
  });
});

describe('jetpackMajorForL4t', () => {
  it.each([
    [32, 4],
    [34, 5],
    [35, 5],
    [36, 6],
    [38, 7],
  ])('R%i is JetPack %i', (l4t, jetpack) => {
    expect(jetpackMajorForL4t(l4t)).toBe(jetpack);
  });

  it.each([28, 31, 33, 37, 39])('R%i is unknown', (l4t) => {
    expect(jetpackMajorForL4t(l4t)).toBeNull();
  });
});

describe('package versions', () => {
  it('strips Debian suffixes', () => {
    expect(l4tVersionFromPackage('35.4.1-20230801124926')).toBe('35.4.1');
    expect(jetpackVersionFromPackage('5.1.2-b104')).toBe('5.1.2');
    expect(jetpackVersionFromPackage('6.0+b106')).toBe('6.0');
    expect(cudnnVersionFromPackage('8.6.0.166-1+cuda11.4')).toBe('8.6.0');
    expect(l4tVersionFromPackage('garbage')).toBeNull();
  });
});

describe('parseDebControl / installedPackageVersion', () => {
  const status = fixture('roots/orin-jp5/var/lib/dpkg/status');

  it('splits stanzas and joins continuation lines', () => {
    const stanzas = parseDebControl(status);
    expect(stanzas.map((s) => s['Package'])).toEqual([
      'libcudnn7',
      'nvidia-l4t-core',
      'libcudnn8',
      'nvidia-jetpack',
    ]);
    expect(stanzas[1]?.['Description']).toBe(
      'NVIDIA Core Package\nCore package for Jetson Linux.\n.\nSecond paragraph of the description.',
    );
  });

  it('finds installed packages only', () => {
    expect(installedPackageVersion(status, 'nvidia-jetpack')).toBe('5.1.2-b104');
    expect(installedPackageVersion(status, /^libcudnn\d+$/)).toBe('8.6.0.166-1+cuda11.4');
    // Only its config files remain.
    expect(installedPackageVersion(status, 'libcudnn7')).toBeNull();
    expect(installedPackageVersion(status, 'cuda-toolkit-11-4')).toBeNull();
  });

  it('does not count a half-installed package', () => {
    const container = fixture('roots/orin-jp6-container/var/lib/dpkg/status');
    expect(installedPackageVersion(container, 'libcudnn8')).toBeNull();
  });
});

describe('parseAptCacheShowJetpack', () => {
  it('returns the highest version apt lists', () => {
    expect(parseAptCacheShowJetpack(fixture('jetson/apt-cache-show-nvidia-jetpack.txt'))).toEqual({
      version: '5.1.2',
      packageVersion: '5.1.2-b104',
    });
  });

  it('returns null when apt knows no nvidia-jetpack', () => {
    expect(parseAptCacheShowJetpack('')).toBeNull();
    expect(parseAptCacheShowJetpack('Package: something-else\nVersion: 1.0\n')).toBeNull();
  });
});

describe('CUDA and cuDNN parsers', () => {
  it('reads version.txt', () => {
    expect(parseCudaVersionTxt('CUDA Version 10.2.300\n')).toBe('10.2.300');
    expect(parseCudaVersionTxt('nothing')).toBeNull();
  });

  it('reads version.json', () => {
    expect(parseCudaVersionJson(fixture('roots/orin-jp5/usr/local/cuda/version.json'))).toBe('11.4.19');
    expect(parseCudaVersionJson('{not json')).toBeNull();
    expect(parseCudaVersionJson('null')).toBeNull();
  });

  it('reads nvcc --version', () => {
    expect(parseNvccVersion(fixture('jetson/nvcc-version.txt'))).toBe('12.2.140');
    expect(parseNvccVersion('Cuda compilation tools, release 10.2')).toBe('10.2');
  });

  it('reads cudnn_version.h defines', () => {
    expect(parseCudnnVersionHeader(fixture('roots/orin-jp5/usr/include/cudnn_version.h'))).toBe('8.6.0');
    expect(
      parseCudnnVersionHeader('#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 3\n#define CUDNN_PATCHLEVEL 0\n'),
    ).toBe('9.3.0');
    // CUDNN_VERSION is derived, not a version part.
    expect(parseCudnnVersionHeader('#define CUDNN_VERSION 8600\n')).toBeNull();
  });
});

describe('collectJetsonInfo', () => {
  const noExec: ExecFn = () => Promise.reject(Object.assign(new Error('spawn ENOENT'), { code: 'ENOENT' }));

  it('reads a full JetPack 5 install', async () => {
    await expect(collectJetsonInfo(root('orin-jp5'), { exec: noExec })).resolves.toEqual({
      model: 'NVIDIA Jetson AGX Orin Developer Kit',
      l4tVersion: '35.4.1',
      l4tBoard: 't186ref',
      jetpackMajor: 5,
      jetpackVersion: '5.1.2',
      jetpackPackageVersion: '5.1.2-b104',
      cudaVersion: '11.4.19',
      cudnnVersion: '8.6.0',
    });
  });

  it('reads a JetPack 4 Nano without the jetpack meta-package', async () => {
    await expect(collectJetsonInfo(root('nano-jp4'), { exec: noExec })).resolves.toEqual({
      model: 'NVIDIA Jetson Nano Developer Kit',
      l4tVersion: '32.7.1',
      l4tBoard: 't210ref',
      jetpackMajor: 4,
      jetpackVersion: null,
      jetpackPackageVersion: null,
      cudaVersion: '10.2.300',
      cudnnVersion: '8.2.1',
    });
  });

  it('falls back to dpkg for L4T and to nvcc for CUDA (JetPack 6 container)', async () => {
    // Prepare
    const calls: Array<[string, readonly string[]]> = [];
    const exec: ExecFn = async (file, args) => {
      calls.push([file, args]);
      return { stdout: fixture('jetson/nvcc-version.txt'), stderr: '' };
    };

    // Act
    const info = await collectJetsonInfo(root('orin-jp6-container'), { exec });

    // Assess
    expect(info).toEqual({
      model: null,
      l4tVersion: '36.3.0',
      l4tBoard: null,
      jetpackMajor: 6,
      jetpackVersion: '6.0',
      jetpackPackageVersion: '6.0+b106',
      cudaVersion: '12.2.140',
      cudnnVersion: null,
    });
    expect(calls).toEqual([[join(root('orin-jp6-container'), 'usr/local/cuda/bin/nvcc'), ['--version']]]);
  });

  it('leaves CUDA unknown when nvcc is missing too', async () => {
    const info = await collectJetsonInfo(root('orin-jp6-container'), { exec: noExec });
    expect(info?.cudaVersion).toBeNull();
  });

  it('returns null on a machine that is not a Jetson', async () => {
    await expect(collectJetsonInfo(root('x86-server'), { exec: noExec })).resolves.toBeNull();
    await expect(collectJetsonInfo(join(fixtures, 'does-not-exist'), { exec: noExec })).resolves.toBeNull();
  });
});
