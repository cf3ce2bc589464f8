// Training job firings through the local runtime (embedded: dynalite, in-process queue).
//   1. schedule-to-start delay: one `* * * * *` job fired 30 times; from the driver delivering the
//      firing to the launcher's start call (container.start), p50 and p99;
//   2. throughput: 200 `* * * * *` jobs firing together every minute; wall time until all 200 runs
//      are launched, as runs per minute.
// The clock is injected: the bench moves it a minute at a time and calls the driver itself.
// Run: npx tsx bench/jobs.ts [firings] [jobs] [rounds]

import { performance } from 'node:perf_hooks';
import type { ContainerSpec } from '../protocol/commands.js';
import { trainingEventHandlers } from '../functions/training/events.js';
import type { Placement, RunLauncher } from '../functions/ports/run-launcher.js';
import { startRuntime, type Runtime } from '../local/runtime.js';

const FIRINGS = Number(process.argv[2] ?? 30);
const JOBS = Number(process.argv[3] ?? 200);
const ROUNDS = Number(process.argv[4] ?? 3);

let clock = Date.parse('2026-01-05T00:00:30.000Z');

/** Records when each start call happens (real time) and on which node. */
class TimingLauncher implements RunLauncher {
  readonly starts = new Map<string, { at: number; nodeId: string }>();
  private waiters: (() => void)[] = [];
  async choose(): Promise<Placement> {
    return { nodeId: 'bench-node' };
  }
  async start(nodeId: string, spec: ContainerSpec): Promise<void> {
    this.starts.set(spec.instanceId, { at: performance.now(), nodeId });
    for (const w of this.waiters.splice(0)) w();
  }
  async remove(): Promise<void> {}
  async alive(): Promise<boolean> {
    return true;
  }
  /** Resolves once `n` starts have been recorded in total. */
  async until(n: number, timeoutMs = 120_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.starts.size < n) {
      if (performance.now() > deadline)
        throw new Error(`only ${this.starts.size} of ${n} starts within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

async function post(rt: Runtime, path: string, body: unknown): Promise<{ job_id: string }> {
  const res = await fetch(`${rt.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { job_id: string };
}

/** Ends every recorded run with exit 0, so the next firing is not skipped. */
async function finishAll(rt: Runtime, launcher: TimingLauncher, done: Set<string>): Promise<void> {
  const open = [...launcher.starts].filter(([id]) => !done.has(id));
  await Promise.all(
    open.map(async ([instanceId, s]) => {
      done.add(instanceId);
      await trainingEventHandlers['agent.container.exited']!(
        {
          type: 'agent.container.exited',
          nodeId: s.nodeId,
          instanceId,
          kind: 'run',
          exitCode: 0,
          logTail: '',
          at: new Date().toISOString(),
        },
        rt.ctx,
      );
    }),
  );
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function startBenchRuntime(): Promise<{ rt: Runtime; launcher: TimingLauncher }> {
  const rt = await startRuntime({
    port: 0,
    now: () => clock,
    // The bench refreshes and ticks the driver itself.
    scheduleRefreshMs: 365 * 86_400_000,
    env: { LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, TABLE_NAME: `bench-${Date.now()}` },
  });
  const launcher = new TimingLauncher();
  rt.ctx.launcher = launcher;
  return { rt, launcher };
}

async function delayBench(): Promise<void> {
  const { rt, launcher } = await startBenchRuntime();
  try {
    await post(rt, '/jobs', {
      name: 'bench-delay',
      image: 'trainer:1',
      command: ['train'],
      schedule: '* * * * *',
    });
    await rt.driver.refresh();
    const delays: number[] = [];
    const done = new Set<string>();
    for (let i = 1; i <= FIRINGS; i++) {
      clock = Date.parse('2026-01-05T00:00:00.000Z') + i * 60_000;
      const t0 = performance.now();
      // The app's own rate(1 minute) schedules fire in the same tick, as they would on AWS.
      await rt.driver.tick();
      await launcher.until(i);
      delays.push([...launcher.starts.values()][i - 1]!.at - t0);
      await finishAll(rt, launcher, done);
    }
    console.log(
      `schedule-to-start over ${FIRINGS} firings: p50 ${fmt(quantile(delays, 0.5))}, p99 ${fmt(quantile(delays, 0.99))}, max ${fmt(Math.max(...delays))}`,
    );
  } finally {
    await rt.stop();
  }
}

async function throughputBench(): Promise<void> {
  clock = Date.parse('2026-02-02T00:00:30.000Z');
  const { rt, launcher } = await startBenchRuntime();
  try {
    for (let i = 0; i < JOBS; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, JOBS - i) }, (_, k) =>
          post(rt, '/jobs', {
            name: `bench-${i + k}`,
            image: 'trainer:1',
            command: ['train'],
            schedule: '* * * * *',
          }),
        ),
      );
    }
    await rt.driver.refresh();
    const done = new Set<string>();
    const perMinute: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      clock = Date.parse('2026-02-02T00:00:00.000Z') + round * 60_000;
      const t0 = performance.now();
      await rt.driver.tick();
      await launcher.until(round * JOBS);
      const seconds = (performance.now() - t0) / 1000;
      perMinute.push((JOBS / seconds) * 60);
      console.log(`round ${round}: ${JOBS} firings → ${JOBS} runs launched in ${seconds.toFixed(2)} s`);
      await finishAll(rt, launcher, done);
    }
    const mean = perMinute.reduce((a, b) => a + b, 0) / perMinute.length;
    console.log(
      `throughput with ${JOBS} jobs firing every minute: ${Math.round(mean)} runs/minute launched (min ${Math.round(Math.min(...perMinute))})`,
    );
  } finally {
    await rt.stop();
  }
}

await delayBench();
await throughputBench();
