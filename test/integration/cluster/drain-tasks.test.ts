import { afterEach, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import {
  ScriptedAgent,
  call,
  eventually,
  type AgentOptions,
  GPU_WORKER,
} from '../../harness/scripted-agent.js';

const X = 'SDXL_4GB_FP8.safetensors';

/** Inference tasks and cordoned or drained nodes (embedded runtime, simulated GPU agents). */
describe('inference tasks on cordoned and drained nodes', () => {
  let rt: Runtime | undefined;
  let agents: ScriptedAgent[] = [];
  afterEach(async () => {
    for (const a of agents) await a.stop();
    agents = [];
    await rt?.stop();
    rt = undefined;
  });

  async function start(): Promise<void> {
    rt = await startRuntime({
      port: 0,
      env: {
        LOG_LEVEL: 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: '2',
        COMMAND_WAIT_MS: '3000',
        AWS_ENDPOINT_URL: undefined,
      },
    });
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
  async function submit(): Promise<string> {
    const res = await api('POST', '/tasks', {
      task_type: 'image_generation',
      model_name: X,
      parameters: { prompt: 'p', width: 512, height: 512, steps: 10 },
      priority: 'normal',
    });
    expect(res.status).toBe(200);
    return res.body.task_id as string;
  }
  const whoRan = (taskId: string) => agents.filter((a) => a.runs.some((r) => r.taskId === taskId));

  it('a cordoned node takes no task, even with its model loaded; uncordoned it takes them again', async () => {
    await start();
    const a = await agent('gpu-c1', { models: [X] });
    const b = await agent('gpu-c2');
    expect((await api('POST', '/api/nodes/gpu-c1/cordon')).status).toBe(200);
    const workers = (await api('GET', '/workers')).body.workers as { worker_id: string; cordoned: boolean }[];
    expect(workers.find((w) => w.worker_id === a.nodeId)?.cordoned).toBe(true);
    expect(workers.find((w) => w.worker_id === b.nodeId)?.cordoned).toBe(false);

    const t = await submit();
    await eventually(() => expect(whoRan(t)).toEqual([b]));
    await b.finish(t);

    expect((await api('POST', `/api/nodes/${a.nodeId}/uncordon`)).status).toBe(200);
    const t2 = await submit();
    // The node with the model resident wins again.
    await eventually(() => expect(whoRan(t2)).toEqual([a]));
  }, 30_000);

  it('drain sends the running task back to the queue, cancels it on the node, and it completes elsewhere', async () => {
    await start();
    const a = await agent('gpu-d1', { models: [X] });
    const b = await agent('gpu-d2', { models: [X] });
    const t = await submit();
    await eventually(() => expect(whoRan(t)).toHaveLength(1));
    const first = whoRan(t)[0]!;
    const other = first === a ? b : a;

    const res = await api('POST', `/api/nodes/${first.name}/drain`);
    expect(res.status).toBe(200);
    expect(res.body.moved).toEqual([{ kind: 'task', id: t, to_node: null, replacement: null }]);
    expect(res.body.not_moved).toEqual([]);

    await eventually(() => expect([...other.running.keys()]).toEqual([t]), 15_000);
    await eventually(() => expect(first.cancels).toContain(t));
    await other.finish(t);
    await eventually(async () =>
      expect((await api('GET', `/tasks/${t}`)).body).toMatchObject({
        status: 'completed',
        assigned_worker: other.nodeId,
        attempts: 2,
      }),
    );
  }, 30_000);
});
