import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS } from '../../../functions/cluster/catalogue.js';
import { emit } from '../../../functions/core/events.js';
import {
  normalizePriority,
  planPlacements,
  type SchedNode,
  type SchedTask,
} from '../../../functions/task-planner/index.js';
import { runPlacement } from '../../../functions/cluster/placement.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import {
  PNG_1x1,
  ScriptedAgent,
  call,
  eventually,
  type AgentOptions,
  GPU_WORKER,
} from '../../harness/scripted-agent.js';

const moto = process.env.AWS_ENDPOINT_URL;
if (!moto && process.env.CI === 'true')
  throw new Error('CI=true but AWS_ENDPOINT_URL is not set: the emulator suite cannot be skipped');

const X = 'SDXL_4GB_FP8.safetensors';
const Y = 'RealVisXL_V5_Turbo.safetensors';

const base = { LOG_LEVEL: 'SILENT', NODE_OFFLINE_AFTER_SECONDS: '2', COMMAND_WAIT_MS: '3000' };
const modes = [
  { name: 'embedded', env: { ...base, AWS_ENDPOINT_URL: undefined } },
  {
    name: 'emulator (moto)',
    env: {
      ...base,
      AWS_ENDPOINT_URL: moto,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    },
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(modes)('task queue over simulated agents, $name', (mode) => {
  const skip = mode.name.startsWith('emulator') && !moto;
  let rt: Runtime | undefined;
  let agents: ScriptedAgent[] = [];

  afterEach(async () => {
    for (const a of agents) await a.stop();
    agents = [];
    await rt?.stop();
    rt = undefined;
  });

  async function start(extra: Record<string, string> = {}, now?: () => number): Promise<Runtime> {
    const id = `${Date.now()}${Math.floor(Math.random() * 1000)}`;
    rt = await startRuntime({
      port: 0,
      ...(now ? { now } : {}),
      env: {
        ...mode.env,
        TABLE_NAME: `cq-${id}`,
        QUEUE_PREFIX: `cq${id}-`,
        SCHEDULE_GROUP: `cq${id}`,
        ARTIFACTS_BUCKET: `cq-${id}`,
        ...extra,
      },
    });
    return rt;
  }

  async function agent(name: string, options: AgentOptions = {}): Promise<ScriptedAgent> {
    const a = new ScriptedAgent(rt!.url, name, { ...GPU_WORKER, heartbeatMs: 200, ...options });
    await a.register();
    await a.heartbeat();
    a.start();
    agents.push(a);
    return a;
  }

  const api = (method: string, path: string, body?: unknown) => call(rt!.url, method, path, body);

  async function generate(model: string, priority = 0): Promise<{ id: string; createdAtMs: number }> {
    const res = await api('POST', '/api/vision/generate', {
      prompt: 'a lighthouse at dusk',
      model,
      priority,
      steps: 10,
    });
    expect(res.status).toBe(200);
    const job = await api('GET', `/tasks/${res.body.job_id}`);
    return { id: res.body.job_id, createdAtMs: Date.parse(job.body.created_at) };
  }

  async function submit(
    model: string,
    priority: 'low' | 'normal' | 'high' | 'critical',
  ): Promise<{ id: string; createdAtMs: number }> {
    const res = await api('POST', '/tasks', {
      task_type: 'image_generation',
      model_name: model,
      parameters: { prompt: 'p', width: 512, height: 512, steps: 10 },
      priority,
    });
    expect(res.status).toBe(200);
    return { id: res.body.task_id, createdAtMs: Date.parse(res.body.created_at) };
  }

  const runningOn = (a: ScriptedAgent) => [...a.running.keys()].sort();
  const whoRan = (taskId: string) => agents.find((a) => a.runs.some((r) => r.taskId === taskId));

  it.skipIf(skip)(
    'places tasks over two models exactly as the scheduler module predicts, switches included',
    async () => {
      // Prepare: two one-slot nodes, one serving X, one empty; tasks are held until the test finishes them.
      await start();
      const n1 = await agent('gpu-a', { models: [X] });
      const n2 = await agent('gpu-b');
      const models = DEFAULT_MODELS.map((m) => ({ id: m.id, gpuMemoryMb: m.gpuMemoryMb }));
      const nodes = new Map<string, { loaded: string[]; running: Set<string> }>([
        [n1.nodeId, { loaded: [X], running: new Set() }],
        [n2.nodeId, { loaded: [], running: new Set() }],
      ]);
      const queue: SchedTask[] = [];
      let predictedSwitches = 0;
      let predictedRuns = 0;

      // The prediction: what planPlacements does with the state the test knows, applied to that state.
      function predict(): void {
        const sched: SchedNode[] = [...nodes].map(([id, n]) => ({
          id,
          online: true,
          gpuMemoryTotalMb: 24_576,
          loadedModels: n.loaded,
          runningTasks: n.running.size,
          maxConcurrency: 1,
        }));
        const plan = planPlacements({ nodes: sched, models, queue, now: Date.now() });
        for (const p of plan.placements) {
          const n = nodes.get(p.nodeId)!;
          n.running.add(p.taskId);
          if (p.switchModel) {
            n.loaded = [p.switchModel.to];
            predictedSwitches++;
          }
          queue.splice(
            queue.findIndex((t) => t.id === p.taskId),
            1,
          );
          predictedRuns++;
        }
      }

      async function observed(): Promise<void> {
        await eventually(() => {
          for (const a of [n1, n2]) expect(runningOn(a)).toEqual([...nodes.get(a.nodeId)!.running].sort());
          expect(n1.runs.length + n2.runs.length).toBe(predictedRuns);
        });
        await sleep(150); // nothing more arrives
        expect(n1.runs.length + n2.runs.length).toBe(predictedRuns);
        expect(n1.loads + n2.loads).toBe(predictedSwitches);
      }

      // Act: submit one at a time, then finish the oldest running task until the queue drains.
      for (const model of [X, X, Y, X, Y, Y, X, Y]) {
        const t = await generate(model);
        queue.push({ id: t.id, model, priority: 0, enqueuedAt: t.createdAtMs });
        predict();
        await observed();
      }
      const finishOrder: string[] = [];
      while (n1.running.size || n2.running.size) {
        const oldest = [n1, n2]
          .flatMap((a) =>
            [...a.running.keys()].map((id) => ({ a, id, at: a.runs.find((r) => r.taskId === id)!.at })),
          )
          .sort((p, q) => p.at - q.at)[0]!;
        await oldest.a.finish(oldest.id);
        finishOrder.push(oldest.id);
        nodes.get(oldest.a.nodeId)!.running.delete(oldest.id);
        predict();
        await observed();
      }

      // Assess: every task ran once, completed, and the switches were the predicted ones (and some happened).
      expect(queue).toEqual([]);
      expect(finishOrder).toHaveLength(8);
      expect(predictedSwitches).toBeGreaterThanOrEqual(3);
      for (const id of finishOrder) {
        expect(n1.runsOf(id) + n2.runsOf(id)).toBe(1);
        await eventually(async () =>
          expect((await api('GET', `/tasks/${id}`)).body.status).toBe('completed'),
        );
      }
      // `total` is counted (task-counts.ts): the counter's write follows the task's.
      await eventually(async () =>
        expect((await api('GET', '/tasks?status=completed&limit=100')).body.total).toBe(8),
      );
      // The stored counters saw the same: 8 placements, the predicted switches among them.
      expect((await api('GET', '/cluster/status')).body.placements).toEqual({
        placed: 8,
        model_switches: predictedSwitches,
        requeued: 0,
        lost: expect.any(Number),
        failed: 0,
      });
    },
    60_000,
  );

  it.skipIf(skip)(
    'places each task once and fills no node past its slots, however many runners race',
    async () => {
      // Prepare: six tasks queued before any node exists, then two two-slot nodes that do not poll yet.
      await start();
      const tasks = [];
      for (let i = 0; i < 6; i++) tasks.push(await generate(X));
      await sleep(2_000); // the runs those submissions asked for are done: only the racing ones below place
      const a = new ScriptedAgent(rt!.url, 'race-a', {
        ...GPU_WORKER,
        models: [X],
        maxConcurrency: 2,
        heartbeatMs: 200,
      });
      const b = new ScriptedAgent(rt!.url, 'race-b', {
        ...GPU_WORKER,
        models: [X],
        maxConcurrency: 2,
        heartbeatMs: 200,
      });
      for (const x of [a, b]) {
        await x.register();
        await x.heartbeat();
        agents.push(x);
      }

      // Act: six runners at once over the same state.
      const reports = await Promise.all(Array.from({ length: 6 }, () => runPlacement(rt!.ctx)));

      // Assess: four slots, four placements in all; every other attempt lost its conditional write.
      expect(reports.reduce((n, r) => n + r.placed.length, 0)).toBe(4);
      expect(reports.reduce((n, r) => n + r.lost, 0)).toBeGreaterThan(0);
      a.start();
      b.start();
      await eventually(() => expect(a.running.size + b.running.size).toBe(4));
      await sleep(300);
      expect(a.running.size).toBe(2);
      expect(b.running.size).toBe(2);
      for (const t of tasks) expect(a.runsOf(t.id) + b.runsOf(t.id)).toBeLessThanOrEqual(1);
      const statuses = await Promise.all(
        tasks.map(async (t) => (await api('GET', `/tasks/${t.id}`)).body.status as string),
      );
      expect(statuses.filter((s) => s === 'queued')).toHaveLength(2);
    },
    40_000,
  );

  it.skipIf(skip)(
    'serves higher priorities first, both APIs on one scale',
    async () => {
      // Prepare: one node, busy with a first task.
      await start();
      const n = await agent('gpu-p', { models: [X] });
      const blocker = await generate(X);
      await eventually(() => expect(runningOn(n)).toEqual([blocker.id]));
      const low = await submit(X, 'low');
      const visionNormal = await generate(X, 0);
      const high = await submit(X, 'high');
      const visionCritical = await generate(X, 7);
      const normal = await submit(X, 'normal');

      // Assess the queue as the vision API shows it, then the order the node runs them in.
      const expected = [visionCritical.id, high.id, visionNormal.id, normal.id, low.id];
      const q = await api('GET', '/api/vision/queue');
      expect(q.body.queue.map((e: { job_id: string }) => e.job_id)).toEqual(expected);
      expect(q.body.processing.map((e: { job_id: string }) => e.job_id)).toEqual([blocker.id]);
      const job = await api('GET', `/api/vision/jobs/${visionNormal.id}`);
      expect(job.body).toMatchObject({ status: 'queued', queue_position: 3 });
      expect((await api('GET', `/tasks/${visionCritical.id}`)).body.priority).toBe('critical');
      expect(normalizePriority(7)).toBe(2);

      // Act: finish whatever runs, five times.
      for (let i = 0; i < 5; i++) {
        const current = runningOn(n)[0]!;
        await n.finish(current);
        await eventually(() => expect(runningOn(n).length === 1 && runningOn(n)[0] !== current).toBe(true));
      }
      await n.finish(runningOn(n)[0]!);
      expect(n.runs.map((r) => r.taskId)).toEqual([blocker.id, ...expected]);
    },
    40_000,
  );

  it.skipIf(skip)(
    'cancels a queued task (never runs) and a running one (task.cancel reaches its node)',
    async () => {
      await start();
      const n = await agent('gpu-c', { models: [X] });
      const running = await generate(X);
      const queued = await generate(X);
      await eventually(() => expect(runningOn(n)).toEqual([running.id]));

      // Act: cancel the queued one through the cluster API, the running one through the vision API.
      const c1 = await api('DELETE', `/tasks/${queued.id}`);
      expect(c1).toMatchObject({
        status: 200,
        body: { message: 'Task cancelled', task_id: queued.id, status: 'cancelled' },
      });
      const c2 = await api('POST', `/api/vision/jobs/${running.id}/cancel`);
      expect(c2).toMatchObject({ status: 200, body: { job_id: running.id, status: 'cancelled' } });

      // Assess: the node got task.cancel and stopped; its slot came back (a new task runs); the queued one never ran.
      await eventually(() => expect(n.cancels).toEqual([running.id]));
      const next = await generate(X);
      await eventually(() => expect(runningOn(n)).toEqual([next.id]));
      expect(n.runsOf(queued.id)).toBe(0);
      expect((await api('GET', `/api/vision/jobs/${queued.id}`)).body.status).toBe('cancelled');
      expect((await api('GET', `/tasks/${running.id}`)).body).toMatchObject({
        status: 'cancelled',
        assigned_worker: n.nodeId,
      });
      // Cancelling again answers the same; a finished task cannot be cancelled; an unknown one is 404.
      expect((await api('DELETE', `/tasks/${queued.id}`)).status).toBe(200);
      await n.finish(next.id);
      await eventually(async () =>
        expect((await api('GET', `/tasks/${next.id}`)).body.status).toBe('completed'),
      );
      expect((await api('DELETE', `/tasks/${next.id}`)).status).toBe(409);
      expect((await api('DELETE', '/tasks/nope')).status).toBe(404);
    },
    40_000,
  );

  it.skipIf(skip)(
    'requeues the task of a node that goes offline; it finishes on another node',
    async () => {
      await start();
      const a = await agent('gpu-o1', { models: [X] });
      const b = await agent('gpu-o2', { models: [X] });
      const t = await generate(X);
      await eventually(() => expect(whoRan(t.id)).toBeDefined());
      const first = whoRan(t.id)!;
      const other = first === a ? b : a;

      // Act: the node goes silent; the fleet's sweep marks it offline (node.offline).
      first.silence();
      await sleep(2_600);
      await emit(rt!.ctx, { type: 'nodes.sweep' });

      // Assess: the other node runs it and completes it there.
      await eventually(() => expect(runningOn(other)).toEqual([t.id]), 15_000);
      await other.finish(t.id);
      await eventually(async () =>
        expect((await api('GET', `/tasks/${t.id}`)).body).toMatchObject({
          status: 'completed',
          assigned_worker: other.nodeId,
          attempts: 2,
        }),
      );
      const workers = await api('GET', '/workers?status=offline');
      expect(workers.body.workers.map((w: { worker_id: string }) => w.worker_id)).toEqual([first.nodeId]);

      // The node comes back: it hears task.cancel, and its late report changes nothing.
      const restarted = new ScriptedAgent(rt!.url, first.name, { ...GPU_WORKER, heartbeatMs: 200 });
      restarted.running.set(t.id, { taskId: t.id, model: X, commandId: 'old' });
      await first.stop();
      agents = agents.filter((x) => x !== first);
      await restarted.register();
      restarted.start();
      agents.push(restarted);
      await eventually(() => expect(restarted.cancels).toContain(t.id), 15_000);
      await sleep(300);
      expect((await api('GET', `/tasks/${t.id}`)).body).toMatchObject({
        status: 'completed',
        assigned_worker: other.nodeId,
      });
    },
    60_000,
  );

  it.skipIf(skip)(
    'stores outputs and lists, serves, deletes and clears them',
    async () => {
      await start();
      await agent('gpu-out', { models: [X], runMs: 20 });
      const t = await generate(X);
      const done = await eventually(async () => {
        const j = await api('GET', `/api/vision/jobs/${t.id}`);
        expect(j.body.status).toBe('completed');
        return j.body;
      });
      expect(done).toMatchObject({
        progress: 100,
        result: { seed: 42, generation_time: 0.5, node_id: 'gpu-out' },
      });
      const url: string = done.result.image_url;
      const filename = decodeURIComponent(url.split('/').pop()!);
      expect(filename).toBe(`${t.id}_image_0.png`);

      const list = await api('GET', '/api/vision/outputs');
      expect(list.body.outputs.map((o: { filename: string }) => o.filename)).toEqual([filename]);
      const gallery = await api('GET', '/api/vision/gallery?limit=10');
      expect(gallery.body).toMatchObject({ total: 1, images: [{ filename, job_id: t.id }] });
      const file = await fetch(`${rt!.url}${url}`);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await file.arrayBuffer()).equals(PNG_1x1)).toBe(true);

      // Traversal and odd names are refused before storage is touched.
      expect((await api('GET', '/api/vision/outputs/..%2F..%2Fetc%2Fpasswd')).status).toBe(400);
      expect((await api('DELETE', '/api/vision/outputs/..%2Fkeys.json')).status).toBe(400);
      expect((await api('DELETE', '/api/vision/outputs/a..b')).status).toBe(400);
      expect((await api('GET', '/api/vision/outputs/.hidden')).status).toBe(400);
      expect((await api('GET', '/api/vision/outputs/missing.png')).status).toBe(404);

      expect(await api('DELETE', `/api/vision/outputs/${encodeURIComponent(filename)}`)).toMatchObject({
        status: 200,
      });
      expect((await api('GET', url)).status).toBe(404);
      const t2 = await generate(X);
      await eventually(async () =>
        expect((await api('GET', `/api/vision/jobs/${t2.id}`)).body.status).toBe('completed'),
      );
      expect((await api('POST', '/api/vision/outputs/clear')).body).toMatchObject({ deleted: 1 });
      expect((await api('GET', '/api/vision/outputs')).body.total).toBe(0);
    },
    40_000,
  );

  it.skipIf(skip)(
    'a dry-run rebalance plans and changes nothing; the real one applies the plan',
    async () => {
      // Prepare: X resident twice, nothing queued: memory_optimized unloads the idle replica.
      await start();
      const a = await agent('gpu-r1', { models: [X] });
      const b = await agent('gpu-r2', { models: [X] });
      await sleep(300);
      const before = (await api('GET', '/models/assignments')).body;
      const commandsBefore = a.seen.length + b.seen.length;

      const dry = await api('POST', '/cluster/rebalance', { strategy: 'memory_optimized', dry_run: true });
      expect(dry.status).toBe(200);
      expect(dry.body).toMatchObject({ status: 'dry_run', dry_run: true, strategy: 'memory_optimized' });
      expect(dry.body.operations).toEqual([
        {
          type: 'model_unload',
          worker_id: expect.any(String),
          model: X,
          reason: 'idle replica, nothing queued',
        },
      ]);
      await sleep(500);
      expect(a.seen.length + b.seen.length).toBe(commandsBefore);
      expect((await api('GET', '/models/assignments')).body).toEqual(before);
      expect((await api('GET', '/tasks')).body.total).toBe(0);

      const real = await api('POST', '/cluster/rebalance', { strategy: 'memory_optimized' });
      expect(real.body).toMatchObject({
        status: 'initiated',
        affected_workers: [dry.body.operations[0].worker_id],
      });
      const target = [a, b].find((x) => x.nodeId === dry.body.operations[0].worker_id)!;
      await eventually(() => expect(target.seen.map((c) => c.command.type)).toContain('container.remove'));
      await eventually(() => expect([...target.servers.keys()]).toEqual([]));
      expect((await api('POST', '/cluster/rebalance', { strategy: 'sideways' })).status).toBe(400);
    },
    40_000,
  );

  it.skipIf(skip)('refuses bad input with 4xx and writes nothing', async () => {
    await start();
    const bad: [string, string, unknown][] = [
      ['POST', '/api/vision/generate', { prompt: 'x', model: 'no-such-model' }],
      ['POST', '/api/vision/generate', { prompt: 'x', width: 1001 }],
      ['POST', '/api/vision/generate', { prompt: 'x', width: 2048 }],
      ['POST', '/api/vision/generate', { prompt: 'x', model: 'sdxl-turbo', height: 1536 }],
      ['POST', '/api/vision/generate', { prompt: 'x', steps: 0 }],
      ['POST', '/api/vision/generate', { prompt: 'x', model: Y, steps: 51 }],
      ['POST', '/api/vision/generate', { prompt: 'x', lora: 'missing' }],
      ['POST', '/api/vision/generate', { prompt: 'x', model: 'llama-2-7b' }],
      ['POST', '/api/vision/generate', { width: 512 }],
      ['POST', '/tasks', { task_type: 'text_generation', model_name: 'gpt-17' }],
      ['POST', '/tasks', { task_type: 'image_generation', model_name: X, parameters: { width: 1003 } }],
      ['POST', '/tasks', { task_type: 'image_generation', model_name: X, priority: 'urgent' }],
    ];
    for (const [method, path, body] of bad) {
      const res = await api(method, path, body);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.detail).toBeDefined();
    }
    expect((await api('GET', '/tasks')).body.total).toBe(0);
    expect((await api('GET', '/api/vision/queue')).body.length).toBe(0);
    expect((await api('GET', '/workers/nope')).status).toBe(404);
    expect((await api('POST', '/api/vision/models/switch/nope', { model: X })).status).toBe(404);
    expect((await api('GET', '/cluster/metrics?timeframe=2h')).status).toBe(400);
  });

  it.skipIf(skip)('uploads a LoRA (multipart), lists it, and a job may use it', async () => {
    await start();
    await agent('gpu-l', { models: [X], runMs: 10 });
    const form = new FormData();
    form.append('name', 'detail_enhancer');
    form.append('file', new Blob([Buffer.from('fake-weights')]), 'detail.safetensors');
    const up = await fetch(`${rt!.url}/api/vision/loras/upload`, { method: 'POST', body: form });
    expect(up.status).toBe(200);
    expect(await up.json()).toMatchObject({
      name: 'detail_enhancer',
      filename: 'detail_enhancer.safetensors',
      size: 12,
    });
    const again = await fetch(`${rt!.url}/api/vision/loras/upload`, { method: 'POST', body: form });
    expect(again.status).toBe(409);
    const evil = new FormData();
    evil.append('name', '../evil');
    evil.append('file', new Blob([Buffer.from('x')]), 'x.safetensors');
    expect((await fetch(`${rt!.url}/api/vision/loras/upload`, { method: 'POST', body: evil })).status).toBe(
      400,
    );
    expect((await api('GET', '/api/vision/loras')).body).toMatchObject({
      total: 1,
      loras: [{ name: 'detail_enhancer', size: 12 }],
    });

    const res = await api('POST', '/api/vision/generate', { prompt: 'x', lora: 'detail_enhancer' });
    expect(res.status).toBe(200);
    const task = await api('GET', `/tasks/${res.body.job_id}`);
    expect(task.body.model_name).toBe(X);
    await eventually(async () =>
      expect((await api('GET', `/api/vision/jobs/${res.body.job_id}`)).body.status).toBe('completed'),
    );
  });

  it.skipIf(skip)(
    'switches, assigns and unloads models by hand, and reports workers and metrics from real records',
    async () => {
      await start();
      const a = await agent('gpu-m', { models: [X], runMs: 10 });
      const sw = await api('POST', '/api/vision/models/switch/gpu-m', { model: Y });
      expect(sw.body).toMatchObject({
        node_id: 'gpu-m',
        model: Y,
        status: 'switching',
        previous_models: [X],
      });
      await eventually(() => expect([...a.servers.keys()]).toEqual([Y]));
      const status = await api('GET', '/api/vision/status');
      expect(status.body).toMatchObject({
        online_nodes: 1,
        offline_nodes: 0,
        queue_length: 0,
        models_loaded: { [Y]: ['gpu-m'] },
      });

      const assign = await api('POST', '/models/assign', {
        model_name: X,
        worker_ids: [a.nodeId],
        preload: true,
      });
      expect(assign.body).toMatchObject({
        model_name: X,
        assignments: [{ worker_id: a.nodeId, status: 'loading' }],
      });
      await eventually(() => expect([...a.servers.keys()].sort()).toEqual([Y, X].sort()));
      const unload = await api('POST', '/models/unload', { model_name: Y, worker_ids: [a.nodeId] });
      expect(unload.body).toMatchObject({ message: 'Model unload initiated', affected_workers: [a.nodeId] });
      await eventually(() => expect([...a.servers.keys()]).toEqual([X]));

      for (let i = 0; i < 3; i++) await generate(X);
      await eventually(async () => expect((await api('GET', '/tasks?status=completed')).body.total).toBe(3));
      // A task is marked completed before its node's slot is released: wait for the release too.
      await eventually(async () =>
        expect((await api('GET', `/workers/${a.nodeId}`)).body.status).toBe('online'),
      );
      const worker = await api('GET', `/workers/${a.nodeId}`);
      expect(worker.body).toMatchObject({
        worker_id: a.nodeId,
        status: 'online',
        gpu_info: { model: 'NVIDIA RTX 4090', memory_total: '24GB', driver_version: '550.54' },
        system_info: { cpu: 'AMD Ryzen 9 7950X', ram_total: '64GB', os: 'Ubuntu 22.04' },
        task_history: { completed_today: 3, success_rate: 100 },
        metrics: { tasks_per_hour: 3, error_rate: 0 },
        current_tasks: 0,
        current_task_ids: [],
        performance_score: 10,
      });
      expect(worker.body.task_history.average_duration).toMatch(/^\d+(\.\d)?s$/);
      // A worker by its name as well as its id; the list's counts are those of the filtered list.
      const byName = await api('GET', '/tasks?worker_id=gpu-m');
      expect(byName.body.total).toBe(3);
      expect(byName.body.tasks.map((t: { assigned_worker: string }) => t.assigned_worker)).toEqual([
        a.nodeId,
        a.nodeId,
        a.nodeId,
      ]);
      expect((await api('GET', '/tasks?worker_id=no-such-worker')).body.total).toBe(0);
      const offlineOnly = await api('GET', '/workers?status=offline');
      expect(offlineOnly.body).toMatchObject({ total: offlineOnly.body.workers.length, online: 0 });
      const onlineOnly = await api('GET', '/workers?status=online');
      expect(onlineOnly.body.total).toBe(onlineOnly.body.workers.length);
      expect(
        onlineOnly.body.workers.map((w: { performance_score: number }) => typeof w.performance_score),
      ).not.toContain('object');
      const metrics = await api('GET', '/cluster/metrics?timeframe=1h');
      expect(metrics.body).toMatchObject({
        timeframe: '1h',
        metrics: { total_tasks: 3, successful_tasks: 3, failed_tasks: 0, success_rate: 100 },
      });
      const cluster = await api('GET', '/cluster/status');
      expect(cluster.body).toMatchObject({
        status: 'operational',
        total_workers: 1,
        active_workers: 1,
        queued_tasks: 0,
        total_memory: '24GB',
      });
      const restart = await api('POST', `/workers/${a.nodeId}/restart`);
      expect(restart.body).toMatchObject({ message: 'Worker restart initiated', worker_id: a.nodeId });
      await eventually(() => expect([...a.servers.keys()]).toEqual([]));
    },
    40_000,
  );

  it.skipIf(skip)(
    'fails a task past its deadline: in the queue, and on a node that never reports',
    async () => {
      // A clock the test can move; nodes stay online across the jump (offline only after 15 minutes).
      let offset = 0;
      await start({ NODE_OFFLINE_AFTER_SECONDS: '900' }, () => Date.now() + offset);
      const queued = await api('POST', '/tasks', {
        task_type: 'text_generation',
        model_name: 'llama-2-7b',
        timeout: 1,
      });
      await sleep(1_100);
      await runPlacement(rt!.ctx, { fullRepair: true });
      expect((await api('GET', `/tasks/${queued.body.task_id}`)).body).toMatchObject({
        status: 'failed',
        error: 'timed out after 1 s in the queue',
      });

      const n = await agent('gpu-t', { models: [X] });
      const held = await submit(X, 'normal');
      await eventually(() => expect(runningOn(n)).toEqual([held.id]));
      offset = 11 * 60_000; // past the 600 s run timeout and the slack for the agent's own report
      await runPlacement(rt!.ctx, { fullRepair: true });
      expect((await api('GET', `/tasks/${held.id}`)).body).toMatchObject({
        status: 'failed',
        error: 'timed out: the node reported no result',
      });
      await eventually(() => expect(n.cancels).toEqual([held.id]));
    },
    30_000,
  );

  it.skipIf(skip)(
    'declares a model: its limits apply at once, and the declaration can be removed',
    async () => {
      await start();
      const decl = {
        kind: 'image',
        image: 'localhost:5000/tiny-sd:1',
        port: 7860,
        protocol: 'vision-generate',
        gpuMemoryMb: 2048,
        maxWidth: 512,
        maxHeight: 512,
        minSteps: 1,
        maxSteps: 8,
      };
      const put = await api('PUT', '/models/catalog/tiny-sd', decl);
      expect(put).toMatchObject({ status: 200, body: { id: 'tiny-sd', max_width: 512, built_in: false } });
      expect((await api('PUT', '/models/catalog/bad', { ...decl, minSteps: 9 })).status).toBe(400);
      expect(
        (
          await api('POST', '/api/vision/generate', {
            prompt: 'x',
            model: 'tiny-sd',
            width: 768,
            height: 512,
            steps: 4,
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await api('POST', '/api/vision/generate', {
            prompt: 'x',
            model: 'tiny-sd',
            width: 512,
            height: 512,
            steps: 4,
          })
        ).status,
      ).toBe(200);
      const available = await api('GET', '/api/vision/models/available');
      expect(available.body.models.map((m: { name: string }) => m.name)).toContain('tiny-sd');
      expect((await api('DELETE', '/models/catalog/tiny-sd')).status).toBe(200);
      expect((await api('DELETE', '/models/catalog/tiny-sd')).status).toBe(404);
      expect(
        (await api('GET', '/models/catalog')).body.models.map((m: { id: string }) => m.id),
      ).not.toContain('tiny-sd');
    },
  );
});
