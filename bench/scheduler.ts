// End-to-end throughput of the shared task queue: the local runtime (embedded adapters), agents
// simulated over HTTP (register, heartbeat, long-poll commands, post events with the image),
// tasks submitted over HTTP through both APIs, two models so placements switch. Prints tasks/min
// from the first submit to the last completion.
// Run: npx tsx bench/scheduler.ts [tasks=400] [nodes=8] [slotsPerNode=2] [runMs=50] [eventWorkers=1]
// (eventWorkers: event batches handled at once, as Lambda runs several for the events queue).
import { eventHandlers } from '../functions/event-handlers.js';
import { startRuntime } from '../local/runtime.js';
import { GPU_WORKER, ScriptedAgent, call } from '../test/harness/scripted-agent.js';

const TASKS = Number(process.argv[2] ?? 400);
const NODES = Number(process.argv[3] ?? 8);
const SLOTS = Number(process.argv[4] ?? 2);
const RUN_MS = Number(process.argv[5] ?? 50);
const EVENT_WORKERS = Number(process.argv[6] ?? 1);
const SUBMITTERS = 16;
const MODELS = ['SDXL_4GB_FP8.safetensors', 'RealVisXL_V5_Turbo.safetensors'];

// Deterministic mix: 70 % one model, 30 % the other.
let seed = 7;
const rand = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;

// Counts and times the events the queue handles, to show where the time goes.
const timing = new Map<string, { n: number; ms: number }>();
for (const type of ['placement.run', 'agent.task.progress', 'agent.task.finished']) {
  const inner = eventHandlers[type]!;
  eventHandlers[type] = async (event, ctx) => {
    const t0 = performance.now();
    await inner(event, ctx);
    const t = timing.get(type) ?? { n: 0, ms: 0 };
    t.n++;
    t.ms += performance.now() - t0;
    timing.set(type, t);
  };
}

const rt = await startRuntime({
  port: 0,
  env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined },
  eventWorkers: EVENT_WORKERS,
});
const agents: ScriptedAgent[] = [];
try {
  for (let i = 0; i < NODES; i++) {
    const a = new ScriptedAgent(rt.url, `bench-${i}`, {
      ...GPU_WORKER,
      models: [MODELS[i % 2]!],
      maxConcurrency: SLOTS,
      runMs: RUN_MS,
      heartbeatMs: 2_000,
      pollWaitSeconds: 1,
    });
    await a.register();
    await a.heartbeat();
    a.start();
    agents.push(a);
  }

  const started = performance.now();
  const cpu0 = process.cpuUsage();
  let next = 0;
  const submit = async (): Promise<void> => {
    while (next < TASKS) {
      const i = next++;
      const model = rand() < 0.7 ? MODELS[0]! : MODELS[1]!;
      const res =
        i % 2 === 0
          ? await call(rt.url, 'POST', '/api/vision/generate', {
              prompt: `bench ${i}`,
              model,
              width: 512,
              height: 512,
              steps: 4,
              priority: i % 3,
            })
          : await call(rt.url, 'POST', '/tasks', {
              task_type: 'image_generation',
              model_name: model,
              parameters: { prompt: `bench ${i}`, width: 512, height: 512 },
              priority: 'normal',
            });
      if (res.status !== 200) throw new Error(`submit ${i}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  };
  await Promise.all(Array.from({ length: SUBMITTERS }, submit));
  const submittedMs = performance.now() - started;

  // The agents count what they reported finished (no request); then the API must say so too.
  // Polling GET /tasks meanwhile would put its own reads of every task in the measured process.
  const deadline = Date.now() + 10 * 60_000;
  const reported = () => agents.reduce((n, a) => n + a.finished, 0);
  while (reported() < TASKS) {
    if (Date.now() > deadline) throw new Error(`only ${reported()}/${TASKS} finished after 10 minutes`);
    await new Promise((r) => setTimeout(r, 20));
  }
  let completed = 0;
  while (completed < TASKS) {
    if (Date.now() > deadline) throw new Error(`only ${completed}/${TASKS} completed after 10 minutes`);
    completed = (await call(rt.url, 'GET', '/tasks?status=completed&limit=1')).body.total as number;
    if (completed < TASKS) await new Promise((r) => setTimeout(r, 50));
  }
  const totalMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const loads = agents.reduce((n, a) => n + a.loads, 0);
  const runs = agents.reduce((n, a) => n + a.runs.length, 0);

  console.log(
    `${TASKS} tasks, ${NODES} nodes x ${SLOTS} slots, ${RUN_MS} ms per task, 2 models (70/30), ${EVENT_WORKERS} event workers`,
  );
  console.log(
    `submitted in ${(submittedMs / 1000).toFixed(2)} s (${Math.round((TASKS / submittedMs) * 60_000)} submits/min)`,
  );
  console.log(`all completed in ${(totalMs / 1000).toFixed(2)} s`);
  console.log(`throughput: ${Math.round((TASKS / totalMs) * 60_000)} tasks/min end to end`);
  // The whole local runtime and the simulated agents share this process: on a loaded machine the
  // CPU time a task costs is the steadier figure.
  console.log(
    `CPU: ${((cpu.user + cpu.system) / 1000 / TASKS).toFixed(1)} ms a task (runtime, dynalite and agents)`,
  );
  for (const [type, t] of timing)
    console.log(
      `  ${type}: ${t.n} handled, ${(t.ms / t.n).toFixed(1)} ms mean, ${(t.ms / 1000).toFixed(1)} s in all`,
    );
  console.log(
    `task.run dispatched: ${runs} (a task runs once: ${runs === TASKS}), model loads on nodes: ${loads}`,
  );
} finally {
  for (const a of agents) await a.stop();
  await rt.stop();
}
