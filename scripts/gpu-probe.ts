/**
 * Runs the agent's collectors on this machine and prints what they read, as JSON.
 * Self-contained once bundled:
 *   npx esbuild scripts/gpu-probe.ts --bundle --platform=node --format=esm --outfile=/tmp/gpu-probe.mjs
 *   node /tmp/gpu-probe.mjs
 */
import { collectJetsonInfo } from '../agent/collectors/jetson.js';
import { collectNvidiaGpus, NvidiaSmiError, type GpuInfo } from '../agent/collectors/nvidia-smi.js';
import { collectSystemInfo } from '../agent/collectors/system.js';
import { collectTegrastatsOnce, type TegrastatsSample } from '../agent/collectors/tegrastats.js';

interface ProbeError {
  name: string;
  message: string;
  reason?: string;
}

function describe(error: unknown): ProbeError {
  if (error instanceof Error) {
    const reason = (error as { reason?: unknown }).reason;
    return { name: error.name, message: error.message, ...(typeof reason === 'string' ? { reason } : {}) };
  }
  return { name: 'Error', message: String(error) };
}

async function probeGpus(): Promise<{ gpus: GpuInfo[]; gpuError: ProbeError | null }> {
  try {
    return { gpus: await collectNvidiaGpus(), gpuError: null };
  } catch (error) {
    // Keep the GPUs that did parse next to the error.
    return { gpus: error instanceof NvidiaSmiError ? error.gpus : [], gpuError: describe(error) };
  }
}

async function probeTegrastats(): Promise<{
  tegrastats: TegrastatsSample | null;
  tegrastatsError: ProbeError | null;
}> {
  try {
    return { tegrastats: await collectTegrastatsOnce(), tegrastatsError: null };
  } catch (error) {
    return { tegrastats: null, tegrastatsError: describe(error) };
  }
}

async function main(): Promise<void> {
  const [gpuResult, system, jetson] = await Promise.all([
    probeGpus(),
    collectSystemInfo(),
    collectJetsonInfo(),
  ]);
  // tegrastats takes a second per sample; only worth it on a Jetson.
  const tegra = jetson === null ? { tegrastats: null, tegrastatsError: null } : await probeTegrastats();
  const report = {
    collectedAt: new Date().toISOString(),
    ...gpuResult,
    system,
    jetson,
    ...tegra,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

await main();
