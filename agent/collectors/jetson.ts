import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileText, type ExecFn } from './exec.js';

export interface L4tRelease {
  /** '35.4.1'. */
  version: string;
  major: number;
  /** 't186ref', 'generic'; null when the source does not say. */
  board: string | null;
}

export interface JetsonInfo {
  /** /proc/device-tree/model, e.g. 'NVIDIA Jetson AGX Orin Developer Kit'. */
  model: string | null;
  l4tVersion: string | null;
  l4tBoard: string | null;
  /** From the L4T major; null for a release we have no mapping for. */
  jetpackMajor: number | null;
  /** From the installed nvidia-jetpack package ('5.1.2'); null when that meta-package is not installed. */
  jetpackVersion: string | null;
  /** The package version as dpkg has it ('5.1.2-b104', '6.0+b106'). */
  jetpackPackageVersion: string | null;
  cudaVersion: string | null;
  cudnnVersion: string | null;
}

// `# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: ...`
const NV_TEGRA_RELEASE_RE = /^#\s*R(\d+)\s*\([^)]*\),\s*REVISION:\s*(\d+(?:\.\d+)*)/;
const BOARD_RE = /\bBOARD:\s*([^,\s]+)/;

/** Reads the first line of /etc/nv_tegra_release. */
export function parseNvTegraRelease(text: string): L4tRelease | null {
  const first = text.split(/\r?\n/, 1)[0]?.trim() ?? '';
  const m = NV_TEGRA_RELEASE_RE.exec(first);
  if (m?.[1] === undefined || m[2] === undefined) return null;
  const major = Number(m[1]);
  return { version: `${major}.${m[2]}`, major, board: BOARD_RE.exec(first)?.[1] ?? null };
}

/**
 * JetPack major for an L4T (Jetson Linux) major. R38 is JetPack 7 per NVIDIA's JetPack 7.0
 * (Jetson Linux 38.2) and 7.1 (38.4) release pages; releases not listed return null.
 */
export function jetpackMajorForL4t(l4tMajor: number): number | null {
  switch (l4tMajor) {
    case 32:
      return 4;
    case 34:
    case 35:
      return 5;
    case 36:
      return 6;
    case 38:
      return 7;
    default:
      return null;
  }
}

/** nvidia-l4t-core's package version '35.4.1-20230801124926' → '35.4.1'. */
export function l4tVersionFromPackage(packageVersion: string): string | null {
  return /^(\d+\.\d+(?:\.\d+)?)/.exec(packageVersion.trim())?.[1] ?? null;
}

/** nvidia-jetpack's package version '5.1.2-b104' or '6.0+b106' → '5.1.2' / '6.0'. */
export function jetpackVersionFromPackage(packageVersion: string): string | null {
  return /^(\d+(?:\.\d+)*)/.exec(packageVersion.trim())?.[1] ?? null;
}

/** Splits Debian control text (dpkg status, `apt-cache show`) into stanzas of field → value. */
export function parseDebControl(text: string): Array<Record<string, string>> {
  const stanzas: Array<Record<string, string>> = [];
  let current: Record<string, string> = {};
  let lastKey: string | null = null;
  const flush = (): void => {
    if (Object.keys(current).length > 0) stanzas.push(current);
    current = {};
    lastKey = null;
  };
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && lastKey !== null) {
      current[lastKey] = `${current[lastKey] ?? ''}\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    lastKey = line.slice(0, colon);
    current[lastKey] = line.slice(colon + 1).trim();
  }
  flush();
  return stanzas;
}

function compareVersionNumbers(a: string, b: string): number {
  const pa = a.match(/\d+/g)?.map(Number) ?? [];
  const pb = b.match(/\d+/g)?.map(Number) ?? [];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

export interface JetpackPackage {
  version: string;
  packageVersion: string;
}

/**
 * Reads `apt-cache show nvidia-jetpack`. That lists every version the apt sources offer, not
 * the installed one, so this returns the highest listed; {@link collectJetsonInfo} reads the
 * installed version from dpkg's status file instead.
 */
export function parseAptCacheShowJetpack(text: string): JetpackPackage | null {
  const versions = parseDebControl(text)
    .filter((s) => s['Package'] === 'nvidia-jetpack' && s['Version'] !== undefined)
    .map((s) => s['Version'] ?? '')
    .sort(compareVersionNumbers);
  const packageVersion = versions.at(-1);
  if (packageVersion === undefined) return null;
  const version = jetpackVersionFromPackage(packageVersion);
  return version === null ? null : { version, packageVersion };
}

/** Version of an installed package in dpkg's status file; `name` may be a pattern. */
export function installedPackageVersion(dpkgStatus: string, name: string | RegExp): string | null {
  for (const stanza of parseDebControl(dpkgStatus)) {
    const pkg = stanza['Package'];
    if (pkg === undefined) continue;
    const matches = typeof name === 'string' ? pkg === name : name.test(pkg);
    // Status is "want flag state"; only state `installed` counts (not half-installed, config-files).
    const state = (stanza['Status'] ?? '').split(/\s+/)[2];
    if (matches && state === 'installed' && stanza['Version']) return stanza['Version'];
  }
  return null;
}

/** `/usr/local/cuda/version.txt`: 'CUDA Version 10.2.300'. */
export function parseCudaVersionTxt(text: string): string | null {
  return /CUDA Version\s+(\d+(?:\.\d+)*)/.exec(text)?.[1] ?? null;
}

/** `/usr/local/cuda/version.json`, which replaced version.txt from CUDA 11.1 (JetPack 5+). */
export function parseCudaVersionJson(text: string): string | null {
  try {
    const data: unknown = JSON.parse(text);
    const cuda = (data as { cuda?: { version?: unknown } } | null)?.cuda;
    return typeof cuda?.version === 'string' ? cuda.version : null;
  } catch {
    return null;
  }
}

/** `nvcc --version`: '... Cuda compilation tools, release 12.2, V12.2.140' → '12.2.140'. */
export function parseNvccVersion(text: string): string | null {
  return /\bV(\d+\.\d+(?:\.\d+)*)\b/.exec(text)?.[1] ?? /release (\d+\.\d+)/.exec(text)?.[1] ?? null;
}

/** cudnn_version.h (or cudnn.h before cuDNN 8): CUDNN_MAJOR/MINOR/PATCHLEVEL → '8.6.0'. */
export function parseCudnnVersionHeader(text: string): string | null {
  const define = (name: string): string | undefined =>
    new RegExp(`^\\s*#\\s*define\\s+${name}\\s+(\\d+)`, 'm').exec(text)?.[1];
  const major = define('CUDNN_MAJOR');
  if (major === undefined) return null;
  return [major, define('CUDNN_MINOR') ?? '0', define('CUDNN_PATCHLEVEL') ?? '0'].join('.');
}

/** A libcudnn package version '8.6.0.166-1+cuda11.4' → '8.6.0', matching the header's form. */
export function cudnnVersionFromPackage(packageVersion: string): string | null {
  return /^(\d+\.\d+\.\d+)/.exec(packageVersion.trim())?.[1] ?? null;
}

// The unversioned names are the alternatives in use; the versioned ones are what they point to.
const CUDNN_HEADERS = [
  'usr/include/cudnn_version.h',
  'usr/include/aarch64-linux-gnu/cudnn_version.h',
  'usr/local/cuda/include/cudnn_version.h',
  'usr/include/aarch64-linux-gnu/cudnn_version_v9.h',
  'usr/include/aarch64-linux-gnu/cudnn_version_v8.h',
  'usr/include/cudnn.h',
  'usr/include/aarch64-linux-gnu/cudnn_v7.h',
];
// libcudnn8 (JetPack 4/5), libcudnn9-cuda-12 (JetPack 6).
const CUDNN_PACKAGE_RE = /^libcudnn\d+(?:-cuda-\d+)?$/;

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export interface CollectJetsonOptions {
  /** Runs `<root>/usr/local/cuda/bin/nvcc --version` when no CUDA version file exists. */
  exec?: ExecFn;
  timeoutMs?: number;
}

async function nvccVersion(fsRoot: string, options: CollectJetsonOptions): Promise<string | null> {
  const exec = options.exec ?? execFileText;
  try {
    const { stdout } = await exec(join(fsRoot, 'usr/local/cuda/bin/nvcc'), ['--version'], {
      timeoutMs: options.timeoutMs ?? 10_000,
    });
    return parseNvccVersion(stdout);
  } catch {
    // Missing, broken or slow nvcc only means the CUDA version is unknown.
    return null;
  }
}

/**
 * Reads the Jetson's software versions from files under `fsRoot` (a test fixture, or a host
 * root mounted into a container). Returns null when nothing marks this as a Jetson: no
 * /etc/nv_tegra_release, no nvidia-l4t-core package, no Tegra device tree.
 */
export async function collectJetsonInfo(
  fsRoot = '/',
  options: CollectJetsonOptions = {},
): Promise<JetsonInfo | null> {
  const at = (p: string): string => join(fsRoot, p);
  const [release, dpkgStatus, model, compatible] = await Promise.all([
    readText(at('etc/nv_tegra_release')),
    readText(at('var/lib/dpkg/status')),
    readText(at('proc/device-tree/model')),
    readText(at('proc/device-tree/compatible')),
  ]);

  const fromRelease = release === null ? null : parseNvTegraRelease(release);
  const l4tPackage = dpkgStatus === null ? null : installedPackageVersion(dpkgStatus, 'nvidia-l4t-core');
  const isTegra = compatible?.includes('nvidia,tegra') ?? false;
  if (fromRelease === null && l4tPackage === null && !isTegra) return null;

  const l4tVersion = fromRelease?.version ?? (l4tPackage === null ? null : l4tVersionFromPackage(l4tPackage));
  const l4tMajor = l4tVersion === null ? null : Number(l4tVersion.split('.')[0]);
  const jetpackPackageVersion =
    dpkgStatus === null ? null : installedPackageVersion(dpkgStatus, 'nvidia-jetpack');

  let cudaVersion: string | null = null;
  const versionJson = await readText(at('usr/local/cuda/version.json'));
  if (versionJson !== null) cudaVersion = parseCudaVersionJson(versionJson);
  if (cudaVersion === null) {
    const versionTxt = await readText(at('usr/local/cuda/version.txt'));
    if (versionTxt !== null) cudaVersion = parseCudaVersionTxt(versionTxt);
  }
  cudaVersion ??= await nvccVersion(fsRoot, options);

  let cudnnVersion: string | null = null;
  for (const header of CUDNN_HEADERS) {
    const text = await readText(at(header));
    cudnnVersion = text === null ? null : parseCudnnVersionHeader(text);
    if (cudnnVersion !== null) break;
  }
  if (cudnnVersion === null && dpkgStatus !== null) {
    const pkg = installedPackageVersion(dpkgStatus, CUDNN_PACKAGE_RE);
    cudnnVersion = pkg === null ? null : cudnnVersionFromPackage(pkg);
  }

  return {
    // The device tree strings end in NUL.
    model: model?.replace(/\0/g, '').trim() || null,
    l4tVersion,
    l4tBoard: fromRelease?.board ?? null,
    jetpackMajor: l4tMajor === null || Number.isNaN(l4tMajor) ? null : jetpackMajorForL4t(l4tMajor),
    jetpackVersion: jetpackPackageVersion === null ? null : jetpackVersionFromPackage(jetpackPackageVersion),
    jetpackPackageVersion,
    cudaVersion,
    cudnnVersion,
  };
}
