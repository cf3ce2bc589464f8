/**
 * Issue 16: requests that answer about a few nodes or the fleet in figures read the same at 200
 * and at 800 nodes. A job names its node by that node's record; model operations on named
 * workers read those workers; /cluster/status and /cluster/metrics' live sample come from the
 * sweep's fleet aggregate. Node records are loaded straight into the store around two registered
 * simulated nodes; every port is metered; counts, never timings.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '../../../bench/cost/fleet.js';
import { loadedFleet, measureRequest, measureRun, withFleet } from '../../harness/read-units.js';
import type { Measured } from '../../harness/read-units.js';
import { keys } from '../../../functions/core/keys.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import type { TaskItem } from '../../../functions/cluster/tasks.js';
import { fleetLauncher } from '../../../functions/training/launcher.js';
import { fleetContext } from '../../../functions/commander/ai.js';

const SMALL = 200;
const LARGE = 800;
const MODEL = 'SDXL_4GB_FP8.safetensors';
const OTHER = 'RealVisXL_V5_Turbo.safetensors';

/** A finished image job that ran on `nodeId`, as markFinished leaves it. */
async function putJob(fleet: Fleet, nodeId: string): Promise<string> {
  const ctx = fleet.rt.ctx;
  const taskId = randomUUID();
  const createdAtMs = ctx.now() - 10_000;
  const createdAt = new Date(createdAtMs).toISOString();
  const t: TaskItem = {
    ...keys.task(taskId),
    ...keys.taskIndexes(taskId, createdAt),
    taskId,
    source: 'vision',
    taskType: 'image_generation',
    model: MODEL,
    parameters: { prompt: 'a job' },
    priority: 0,
    priorityInput: 'normal',
    status: 'completed',
    createdAt,
    createdAtMs,
    runTimeoutSeconds: 600,
    attempts: 1,
    progress: 100,
    nodeId,
    slot: 0,
    completedAt: new Date(createdAtMs + 5_000).toISOString(),
    completedAtMs: createdAtMs + 5_000,
  };
  await ctx.store.put(t);
  return taskId;
}

/** Requests in order (each leaves the fleet as the next expects): method, path, body. */
const REQUESTS = [
  ['GET', '/cluster/status'],
  ['GET', '/cluster/metrics?timeframe=1h'],
  ['GET', '/api/vision/jobs/{job}'],
  ['GET', '/api/vision/jobs'],
  ['GET', '/api/vision/queue'],
  ['POST', '/models/assign', { model_name: MODEL, worker_ids: ['{first}'], preload: false }],
  ['POST', '/models/unload', { model_name: MODEL, worker_ids: ['{first}'] }],
  ['POST', '/api/vision/models/switch/{second}', { model: OTHER }],
  ['POST', '/workers/{second}/restart'],
  ['GET', '/system/resources'],
  ['GET', '/health/detailed'],
  ['GET', '/test/integration'],
  ['POST', '/api/clusters/', { name: 'reads', node_ids: ['{first}', '{second}'] }],
  ['GET', '/api/clusters/'],
  ['GET', '/api/swarm/containers'],
] as const;

describe('requests about a few nodes or the fleet in figures read the same at 200 and 800 nodes', () => {
  const measured = new Map<number, Map<string, Measured>>();

  async function measureAt(total: number) {
    return withFleet(loadedFleet(total), async (f) => {
      const ctx = f.rt.ctx;
      const [first, second] = f.nodes.map((n) => n.nodeId) as [string, string];
      const job = await putJob(f, first);
      // The sweep writes the fleet aggregate the figures come from.
      await ctx.queue.send(EVENTS_QUEUE, JSON.stringify({ type: 'nodes.sweep' }));
      await f.settle();
      const fill = (s: string) =>
        s.replace('{first}', first).replace('{second}', second).replace('{job}', job);
      const out = new Map<string, Measured>();
      for (const [method, path, body] of REQUESTS) {
        const sent = body && JSON.parse(fill(JSON.stringify(body)));
        out.set(`${method} ${path}`, await measureRequest(f.meter, f.rt.url, method, fill(path), sent));
        await f.settle();
      }
      // A training run's placement and policy check, through the fleet's launcher.
      const launcher = fleetLauncher(ctx);
      const runs: [string, () => Promise<unknown>][] = [
        ['launcher.choose', () => launcher.choose({ gpus: 1, cpu: 1, memoryMb: 1024, diskGb: 1 }, [])],
        ['launcher.refusal', () => launcher.refusal!({ volumes: [] })],
        // The AI assistant's fleet context: the fleet counted and its first nodes by name.
        ['fleetContext', () => fleetContext(ctx)],
      ];
      for (const [key, run] of runs) {
        const { out: answer, ...reads } = await measureRun(f.meter, key, run);
        out.set(key, { status: 200, body: { answer }, ...reads });
      }
      measured.set(total, out);
      return { first, second };
    });
  }

  let ids: { first: string; second: string };
  beforeAll(async () => {
    await measureAt(SMALL);
    ids = await measureAt(LARGE);
  }, 300_000);

  it.each([
    ...REQUESTS.map(([method, path]) => `${method} ${path}`),
    'launcher.choose',
    'launcher.refusal',
    'fleetContext',
  ])('%s reads no more at 800 nodes than at 200', (key) => {
    const small = measured.get(SMALL)!.get(key)!;
    const large = measured.get(LARGE)!.get(key)!;
    expect([200, 201]).toContain(small.status);
    expect([200, 201]).toContain(large.status);
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });

  it('answers with the fleet and the named nodes', () => {
    const large = measured.get(LARGE)!;
    expect(large.get('GET /cluster/status')!.body).toMatchObject({
      status: 'operational',
      total_workers: LARGE,
      active_workers: LARGE,
      running_tasks: 0,
    });
    expect(large.get('GET /cluster/status')!.body.total_memory).toMatch(/^\d+(\.\d+)?(GB|TB)$/);
    expect(large.get('GET /cluster/metrics?timeframe=1h')!.body).toMatchObject({
      timeframe: '1h',
      metrics: { samples: 1 },
    });
    // The job names its node by the node's name, not its id.
    const detail = large.get('GET /api/vision/jobs/{job}')!.body as { result: { node_id: string } };
    expect(detail.result.node_id).not.toBe(ids.first);
    expect(detail.result.node_id.length).toBeGreaterThan(0);
    const list = large.get('GET /api/vision/jobs')!.body as { jobs: { result: { node_id: string } }[] };
    expect(list.jobs.map((j) => j.result.node_id)).toEqual([detail.result.node_id]);
    expect(large.get('POST /models/assign')!.body).toMatchObject({
      assignments: [{ worker_id: ids.first, status: 'queued' }],
    });
    expect(large.get('POST /models/unload')!.body).toMatchObject({ affected_workers: [ids.first] });
    expect(large.get('POST /api/vision/models/switch/{second}')!.body).toMatchObject({ model: OTHER });
    expect(large.get('POST /workers/{second}/restart')!.body).toMatchObject({ worker_id: ids.second });
    // Every node's host summed: as many cores a node at both sizes; every check passes.
    const cores = (n: number) =>
      (measured.get(n)!.get('GET /system/resources')!.body as { system: { cpu: { total_cores: number } } })
        .system.cpu.total_cores / n;
    expect(cores(LARGE)).toBe(cores(SMALL));
    expect(cores(LARGE)).toBeGreaterThan(0);
    expect(large.get('GET /health/detailed')!.body.components).toMatchObject({
      docker: { status: 'OK', message: `Connected: ${LARGE} of ${LARGE} nodes online` },
    });
    expect(large.get('GET /test/integration')!.body).toMatchObject({ overall_status: 'PASSED' });
    // A cluster of two named nodes: its members by name, both online.
    expect(large.get('GET /api/clusters/')!.body).toEqual([
      expect.objectContaining({
        name: 'reads',
        status: 'active',
        node_ids: [expect.any(String), expect.any(String)],
      }),
    ]);
    expect(large.get('GET /api/swarm/containers')!.body.server).toBe(
      `control plane (${LARGE} of ${LARGE} nodes online)`,
    );
    const context = large.get('fleetContext')!.body.answer as { fleet: unknown; nodes: unknown[] };
    expect(context.fleet).toEqual({ nodes_total: LARGE, nodes_online: LARGE, nodes_offline: 0 });
    expect(context.nodes).toHaveLength(50);
    // A node of the first group fits the run, and every node allows its container.
    expect(large.get('launcher.choose')!.body.answer).toMatchObject({ nodeId: expect.any(String) });
    expect(large.get('launcher.refusal')!.body.answer).toBeUndefined();
  });
});
