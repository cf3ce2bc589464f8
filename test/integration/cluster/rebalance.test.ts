/**
 * POST /cluster/rebalance plans over a window of the fleet (each model's holders from the residency
 * index, a page of free nodes while tasks are queued, their own held slots): what it plans is what
 * it planned over the whole fleet. Demand is the queue's counters, written here as a task queued for
 * the model would (no task, so no placement takes it meanwhile).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { ScriptedAgent, call, eventually, GPU_WORKER } from '../../harness/scripted-agent.js';
import { setNodeModels } from '../../../functions/cluster/workers.js';
import { claimSlot } from '../../../functions/cluster/slots.js';
import { countTransition } from '../../../functions/cluster/task-counts.js';
import { modelInstanceId } from '../../../functions/cluster/catalogue.js';

const X = 'SDXL_4GB_FP8.safetensors'; // 5,120 MB
const Y = 'RealVisXL_V5_Turbo.safetensors'; // 7,168 MB
const TURBO = 'sdxl-turbo'; // 6,656 MB
const SDXL = 'stable-diffusion-xl'; // 8,192 MB

describe('a rebalance over the holders and a page of free nodes', () => {
  let rt: Runtime | undefined;
  let agents: ScriptedAgent[] = [];

  afterEach(async () => {
    for (const a of agents) await a.stop();
    agents = [];
    await rt?.stop();
    rt = undefined;
  });

  /** A runtime with its schedules stopped (no recount puts the counted demand back to the tasks) and three idle 24 GB workers. */
  async function start(): Promise<[ScriptedAgent, ScriptedAgent, ScriptedAgent]> {
    const id = `${Date.now()}${Math.floor(Math.random() * 1000)}`;
    rt = await startRuntime({
      port: 0,
      env: {
        LOG_LEVEL: 'SILENT',
        TABLE_NAME: `rb-${id}`,
        SCHEDULE_GROUP: `rb${id}`,
        ARTIFACTS_BUCKET: `rb-${id}`,
      },
    });
    rt.driver.stop();
    for (const name of ['rb-a', 'rb-b', 'rb-c']) {
      const a = new ScriptedAgent(rt.url, name, { ...GPU_WORKER, heartbeatMs: 200 });
      await a.register();
      await a.heartbeat();
      a.start();
      agents.push(a);
    }
    return agents as [ScriptedAgent, ScriptedAgent, ScriptedAgent];
  }

  const queue = async (model: string, count = 1) => {
    for (let i = 0; i < count; i++)
      await countTransition(
        rt!.ctx,
        { model, priority: 0, taskType: 'inference', counted: true },
        undefined,
        'queued',
      );
  };
  const rebalance = (body: Record<string, unknown>) => call(rt!.url, 'POST', '/cluster/rebalance', body);
  const startedModels = (a: ScriptedAgent) =>
    a.seen.filter((c) => c.command.type === 'container.start').map((c) => c.command);

  it('a model queued for and resident nowhere is loaded on a free node with room', async () => {
    const [a, b, c] = await start();
    // a has no room for Y (21,504 of 24,576 MB held).
    await setNodeModels(rt!.ctx, a.nodeId, [SDXL, TURBO, X]);
    await queue(Y, 2);
    const dry = await rebalance({ strategy: 'memory_optimized', dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body.operations).toEqual([
      {
        type: 'model_load',
        worker_id: expect.any(String),
        model: Y,
        reason: 'queued for, resident nowhere',
      },
    ]);
    const to = dry.body.operations[0].worker_id as string;
    expect([b.nodeId, c.nodeId]).toContain(to);

    const real = await rebalance({ strategy: 'memory_optimized' });
    expect(real.body).toMatchObject({
      status: 'initiated',
      affected_workers: [to],
      operations: dry.body.operations,
    });
    const target = agents.find((x) => x.nodeId === to)!;
    await eventually(() => expect([...target.servers.keys()]).toEqual([Y]));
    expect(startedModels(a)).toEqual([]);
    // The control plane's record of the target (what the scheduler routes by) has Y at once.
    const assignments = (await call(rt!.url, 'GET', '/models/assignments')).body.assignments as {
      worker_id: string;
      models: { name: string }[];
    }[];
    expect(assignments.find((w) => w.worker_id === to)!.models.map((m) => m.name)).toEqual([Y]);
  });

  it('an over-committed node moves a queued-for model it alone holds to the roomiest free node', async () => {
    const [a, b, c] = await start();
    // 27,136 MB on a 24,576 MB GPU; every model on it is queued for, so the largest moves.
    await setNodeModels(rt!.ctx, a.nodeId, [SDXL, Y, TURBO, X]);
    for (const m of [SDXL, Y, TURBO, X]) await queue(m);
    const real = await rebalance({ strategy: 'memory_optimized' });
    expect(real.status).toBe(200);
    expect(real.body.operations).toEqual([
      {
        type: 'model_migration',
        from_worker: a.nodeId,
        to_worker: expect.any(String),
        model: SDXL,
        reason: 'over-committed GPU memory',
      },
    ]);
    const to = real.body.operations[0].to_worker as string;
    expect([b.nodeId, c.nodeId]).toContain(to);
    expect(real.body.affected_workers).toEqual([a.nodeId, to].sort());
    const target = agents.find((x) => x.nodeId === to)!;
    await eventually(() => expect([...target.servers.keys()]).toEqual([SDXL]));
    await eventually(() =>
      expect(a.seen.map((e) => e.command)).toContainEqual(
        expect.objectContaining({ type: 'container.remove', instanceId: modelInstanceId(a.nodeId, SDXL) }),
      ),
    );
    expect(startedModels(b).length + startedModels(c).length).toBe(1);
  });

  it('the idle replica of a model nobody queues for is unloaded, the one running a task stays', async () => {
    const [a, b] = await start();
    await setNodeModels(rt!.ctx, a.nodeId, [X]);
    await setNodeModels(rt!.ctx, b.nodeId, [X]);
    // a runs a task of X: its slot in its own partition says so.
    expect(await claimSlot(rt!.ctx, a.nodeId, [0], 'task-rb', X)).toBe(0);
    const dry = await rebalance({ strategy: 'memory_optimized', dry_run: true });
    expect(dry.body).toMatchObject({
      status: 'dry_run',
      affected_workers: [b.nodeId],
      operations: [
        { type: 'model_unload', worker_id: b.nodeId, model: X, reason: 'idle replica, nothing queued' },
      ],
    });
    // load_balanced keeps replicas nobody queues for unless it needs their room.
    const balanced = await rebalance({ strategy: 'load_balanced', dry_run: true });
    expect(balanced.body).toMatchObject({ status: 'dry_run', operations: [] });
  });
});
