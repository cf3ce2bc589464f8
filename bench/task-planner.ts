// Times planPlacements on 10 000 queued tasks over 1 000 nodes.
// Run: npx tsx bench/task-planner.ts [tasks] [nodes]

import {
  planPlacements,
  type SchedModel,
  type SchedNode,
  type SchedTask,
} from '../functions/task-planner/index.js';

const TASKS = Number(process.argv[2] ?? 10_000);
const NODES = Number(process.argv[3] ?? 1_000);
const NOW = 1_750_000_000_000;

// Deterministic PRNG so every run plans the same fleet.
let seed = 42;
const rand = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

const models: SchedModel[] = [
  { id: 'sdxl-turbo', gpuMemoryMb: 6_500 },
  { id: 'SDXL_4GB_FP8', gpuMemoryMb: 4_000 },
  { id: 'RealVisXL_V5_Turbo', gpuMemoryMb: 7_000 },
  { id: 'llama-2-7b', gpuMemoryMb: 6_500 },
  { id: 'llama-2-70b', gpuMemoryMb: 40_000 },
];
// Skewed popularity: a few hot models, one rare big one.
const weights = [0.35, 0.25, 0.2, 0.15, 0.05];
const pickModel = (): string => {
  let r = rand();
  for (let i = 0; i < models.length; i++) {
    r -= weights[i] as number;
    if (r <= 0) return models[i]!.id;
  }
  return models[0]!.id;
};

function fleet(slots: { min: number; spread: number }): SchedNode[] {
  const gpus = [
    { gpuType: 'orin', gpuMemoryTotalMb: 32_000 },
    { gpuType: 'rtx4090', gpuMemoryTotalMb: 24_000 },
    { gpuType: 'a100', gpuMemoryTotalMb: 80_000 },
  ];
  return Array.from({ length: NODES }, (_, i) => {
    const gpu = pick(gpus);
    const maxConcurrency = slots.min + Math.floor(rand() * slots.spread);
    const loaded =
      rand() < 0.8 ? [pickModel()].filter((m) => m !== 'llama-2-70b' || gpu.gpuType === 'a100') : [];
    return {
      id: `node-${String(i).padStart(4, '0')}`,
      online: rand() < 0.95,
      ...gpu,
      loadedModels: loaded,
      runningTasks: loaded.length > 0 && rand() < 0.3 ? Math.floor(rand() * 3) : 0,
      maxConcurrency,
    };
  });
}

function queue(): SchedTask[] {
  return Array.from({ length: TASKS }, (_, i) => {
    const t: SchedTask = {
      id: `task-${i}`,
      model: pickModel(),
      priority: pick([-1, 0, 0, 0, 1, 2]),
      enqueuedAt: NOW - Math.floor(rand() * 600_000),
    };
    if (rand() < 0.1) t.timeoutMs = 300_000;
    if (rand() < 0.1) t.requirements = { gpuType: pick(['orin', 'rtx4090', 'a100']) };
    return t;
  });
}

function bench(label: string, nodes: SchedNode[], tasks: SchedTask[]): void {
  const input = { nodes, models, queue: tasks, now: NOW };
  for (let i = 0; i < 5; i++) planPlacements(input); // warm up the JIT

  const runs: number[] = [];
  let last = planPlacements(input);
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    last = planPlacements(input);
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  const median = runs[Math.floor(runs.length / 2)] as number;
  const best = runs[0] as number;
  const switches = last.placements.filter((p) => p.switchModel).length;
  const online = nodes.filter((n) => n.online).length;

  console.log(`${label}: ${tasks.length} tasks, ${nodes.length} nodes (${online} online)`);
  console.log(
    `  placed ${last.placements.length} (${switches} switches), timed out ${last.timedOut.length}, ` +
      `still queued ${last.stillQueued.length}, draining ${last.draining.length}`,
  );
  console.log(`  median ${median.toFixed(2)} ms, best ${best.toFixed(2)} ms over ${runs.length} runs`);
  console.log(
    `  ${Math.round(last.placements.length / (median / 1000)).toLocaleString('en-US')} placements/s (median)`,
  );
  console.log(
    `  ${Math.round(tasks.length / (median / 1000)).toLocaleString('en-US')} tasks decided/s (median)`,
  );
}

// Enough slots for nearly the whole queue (4..16 per node), then a saturated fleet (1..3 per node).
bench('fits', fleet({ min: 4, spread: 13 }), queue());
bench('saturated', fleet({ min: 1, spread: 3 }), queue());
