import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { emit } from '../../../functions/core/events.js';
import { CLUSTER_STREAM_EVENTS } from '../../../functions/realtime/cluster-stream.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { ScriptedAgent, call, eventually, GPU_WORKER } from '../../harness/scripted-agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are loosely typed JSON
type Frame = any;

/**
 * The Cluster Manager's `WS /ws`: its documented events with `{event, timestamp, data}`, from
 * simulated workers that register, heat up, load a model, run and fail tasks, go silent.
 */
describe('cluster event stream WS /ws (embedded runtime)', () => {
  let rt: Runtime;
  let ws: WebSocket;
  const frames: Frame[] = [];
  const agents: ScriptedAgent[] = [];
  const X = 'SDXL_4GB_FP8.safetensors';
  const next = (match: (f: Frame) => boolean) =>
    eventually(async () => {
      const hit = frames.find(match);
      if (!hit) throw new Error(`no matching frame among ${JSON.stringify(frames.slice(-3))}`);
      return hit;
    }, 15_000);

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: undefined,
        LOG_LEVEL: 'SILENT',
        API_AUTH: 'false',
        NODE_OFFLINE_AFTER_SECONDS: '2',
        COMMAND_WAIT_MS: '3000',
      },
    });
    ws = new WebSocket(`${rt.url.replace(/^http/, 'ws')}/ws`);
    ws.on('message', (data) => frames.push(JSON.parse(String(data))));
    await next((f) => f.event === 'connected');
  });
  afterAll(async () => {
    ws?.terminate();
    for (const a of agents) await a.stop();
    await rt?.stop();
  });

  /** Silent past NODE_OFFLINE_AFTER_SECONDS: the sweep (fired here, not waited for) flips the worker. */
  const wentOffline = (nodeId: string) =>
    eventually(async () => {
      await emit(rt.ctx, { type: 'nodes.sweep' });
      const seen = frames.some(
        (f) =>
          f.event === 'worker_status_changed' && f.data.worker_id === nodeId && f.data.status === 'offline',
      );
      if (!seen) throw new Error('not offline yet');
    }, 15_000);
  const submit = (prompt: string) =>
    call(rt.url, 'POST', '/tasks', {
      task_type: 'image_generation',
      model_name: X,
      parameters: { prompt, width: 512, height: 512, steps: 10 },
    });
  const isoSeconds = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

  it('says which events it carries on connect', () => {
    const hello = frames.find((f) => f.event === 'connected');
    expect(hello.data.events).toEqual([...CLUSTER_STREAM_EVENTS]);
    expect(hello.timestamp).toMatch(isoSeconds);
  });

  it('worker_status_changed, model_loaded and task_completed as a worker joins and runs a task', async () => {
    const a = new ScriptedAgent(rt.url, 'stream-a', { ...GPU_WORKER, heartbeatMs: 200, runMs: 50 });
    agents.push(a);
    await a.register();
    await a.heartbeat();
    a.start();
    const online = await next((f) => f.event === 'worker_status_changed' && f.data.worker_id === a.nodeId);
    expect(online).toMatchObject({
      timestamp: expect.stringMatching(isoSeconds),
      data: { worker_id: a.nodeId, worker_name: 'stream-a', status: 'online', previous_status: null },
    });

    const submitted = await submit('a lighthouse');
    expect(submitted.status).toBeLessThan(300);
    const taskId: string = submitted.body.task_id;
    const done = await next((f) => f.event === 'task_completed' && f.data.task_id === taskId);
    expect(done.data).toMatchObject({ task_id: taskId, worker_id: a.nodeId, success: true, model: X });
    expect(done.data.duration).toMatch(/^\d+(\.\d)?s$/);
    const loaded = await next((f) => f.event === 'model_loaded' && f.data.worker_id === a.nodeId);
    expect(loaded.data).toEqual({ worker_id: a.nodeId, worker_name: 'stream-a', model: X });
  });

  it('task_failed with the reason when a worker reports a failure', async () => {
    const b = new ScriptedAgent(rt.url, 'stream-b', { ...GPU_WORKER, heartbeatMs: 200, models: [X] });
    agents.push(b);
    await b.register();
    await b.heartbeat();
    b.start();
    // The first worker leaves (silent past NODE_OFFLINE_AFTER_SECONDS), so the task goes to b.
    const a = agents[0]!;
    await a.stop();
    await wentOffline(a.nodeId);
    const submitted = await submit('a storm');
    const taskId: string = submitted.body.task_id;
    await eventually(() => {
      if (!b.running.has(taskId)) throw new Error('not placed yet');
    }, 15_000);
    await b.finish(taskId, 'failed');
    const failed = await next((f) => f.event === 'task_failed' && f.data.task_id === taskId);
    expect(failed.data).toMatchObject({
      task_id: taskId,
      worker_id: b.nodeId,
      success: false,
      status: 'failed',
    });
    expect(typeof failed.data.error).toBe('string');
  });

  it('gpu_alert once when a GPU crosses the temperature threshold, and worker_status_changed offline when it goes silent', async () => {
    const c = new ScriptedAgent(rt.url, 'stream-hot', { ...GPU_WORKER, heartbeatMs: 200 });
    agents.push(c);
    await c.register();
    const beat = (celsius: number) =>
      call(
        rt.url,
        'POST',
        '/agent/heartbeat',
        {
          metrics: {
            cpuPercent: 10,
            memoryUsedMb: 1024,
            memoryTotalMb: 16_384,
            diskUsedGb: 10,
            diskTotalGb: 100,
            gpus: [
              {
                index: 0,
                uuid: 'GPU-hot',
                name: 'NVIDIA H100',
                utilizationGpu: 99,
                utilizationMemory: 50,
                memoryTotalMiB: 80_000,
                memoryUsedMiB: 40_000,
                memoryFreeMiB: 40_000,
                temperatureC: celsius,
                powerDrawW: 600,
                powerLimitW: 700,
              },
            ],
          },
          containers: [],
          loadedModels: [],
        },
        c.auth,
      );
    expect((await beat(60)).status).toBe(200);
    expect((await beat(91)).status).toBe(200);
    expect((await beat(93)).status).toBe(200);
    const alert = await next((f) => f.event === 'gpu_alert' && f.data.worker_id === c.nodeId);
    expect(alert.data).toMatchObject({
      worker_name: 'stream-hot',
      alert: 'gpu_temperature',
      threshold_celsius: 85,
      gpus: [{ gpu_index: 0, label: 'GPU 0 (NVIDIA H100)', temperature_celsius: 91 }],
    });

    // Silent past NODE_OFFLINE_AFTER_SECONDS: the sweep flips it.
    await wentOffline(c.nodeId);
    expect(frames.filter((f) => f.event === 'gpu_alert' && f.data.worker_id === c.nodeId)).toHaveLength(1);
  });

  it('cluster_rebalance_started when a rebalance changes placements', async () => {
    const d1 = new ScriptedAgent(rt.url, 'stream-r1', { ...GPU_WORKER, heartbeatMs: 200, models: [X] });
    const d2 = new ScriptedAgent(rt.url, 'stream-r2', { ...GPU_WORKER, heartbeatMs: 200, models: [X] });
    for (const d of [d1, d2]) {
      agents.push(d);
      await d.register();
      await d.heartbeat();
      d.start();
    }
    const real = await eventually(async () => {
      const r = await call(rt.url, 'POST', '/cluster/rebalance', { strategy: 'memory_optimized' });
      if (r.body.status !== 'initiated') throw new Error(JSON.stringify(r.body));
      return r;
    }, 15_000);
    const started = await next(
      (f) => f.event === 'cluster_rebalance_started' && f.data.rebalance_id === real.body.rebalance_id,
    );
    expect(started.data).toEqual({
      rebalance_id: real.body.rebalance_id,
      strategy: 'memory_optimized',
      affected_workers: real.body.affected_workers,
      operations: real.body.operations.length,
    });
  });
});
