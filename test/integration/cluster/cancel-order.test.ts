import { afterEach, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import {
  ScriptedAgent,
  call,
  eventually,
  GPU_WORKER,
  type HttpAnswer,
} from '../../harness/scripted-agent.js';
import type { CommandEnvelope } from '../../../protocol/commands.js';

/**
 * Commands to a node are not ordered: a cancel sent while the placement was still between
 * assigning a task and sending its run reaches the node first. The run must then end cancelled,
 * not hold the node's slot (the node refused a model switch as "busy" until it did).
 */
const moto = process.env.AWS_ENDPOINT_URL;
if (!moto && process.env.CI === 'true')
  throw new Error('CI=true but AWS_ENDPOINT_URL is not set: the emulator suite cannot be skipped');

const X = 'SDXL_4GB_FP8.safetensors';
const base = { LOG_LEVEL: 'SILENT', COMMAND_WAIT_MS: '3000' };
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read as the API documents them
type Api = (method: string, path: string, body?: unknown) => Promise<HttpAnswer<any>>;
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

describe.each(modes)('a task.cancel that overtakes its task.run, $name', (mode) => {
  const skip = mode.name.startsWith('emulator') && !moto;
  let rt: Runtime | undefined;
  const agents: ScriptedAgent[] = [];

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    await rt?.stop();
    rt = undefined;
  });

  async function setup(): Promise<{ api: Api; node: ScriptedAgent }> {
    const id = `${Date.now()}${Math.floor(Math.random() * 1000)}`;
    rt = await startRuntime({
      port: 0,
      env: {
        ...mode.env,
        TABLE_NAME: `co-${id}`,
        QUEUE_PREFIX: `co${id}-`,
        SCHEDULE_GROUP: `co${id}`,
        ARTIFACTS_BUCKET: `co-${id}`,
      },
    });
    const url = rt.url;
    // Registered and beating, but its command loop is the test's: it decides the order.
    const node = new ScriptedAgent(url, 'gpu-order', { ...GPU_WORKER, models: [X] });
    await node.register();
    await node.heartbeat();
    agents.push(node);
    return { api: (method, path, body) => call(url, method, path, body), node };
  }

  const generate = async (api: Api): Promise<string> => {
    const res = await api('POST', '/api/vision/generate', { prompt: 'a lighthouse', model: X, steps: 10 });
    expect(res.status).toBe(200);
    return res.body.job_id as string;
  };

  /** Polls until the node's queue has given every command type named. */
  async function pollFor(node: ScriptedAgent, types: string[]) {
    const got: { receiptHandle: string; envelope: CommandEnvelope }[] = [];
    await eventually(async () => {
      got.push(...(await node.poll(0, 10)));
      expect(got.map((g) => g.envelope.command.type).sort()).toEqual([...types].sort());
    }, 10_000);
    return got;
  }

  async function serve(
    node: ScriptedAgent,
    envelopes: { receiptHandle: string; envelope: CommandEnvelope }[],
  ) {
    for (const { envelope } of envelopes) {
      const r = await node.result(envelope.commandId, await node.execute(envelope));
      expect(r.status).toBe(200);
    }
    await node.ack(envelopes.map((g) => g.receiptHandle));
  }

  it.skipIf(skip)(
    'the run arriving after its cancel ends cancelled; the slot comes back and the node can switch',
    async () => {
      const { api, node } = await setup();
      const job = await generate(api);
      await eventually(async () => expect((await api('GET', `/tasks/${job}`)).body.status).toBe('assigned'));
      expect((await api('POST', `/api/vision/jobs/${job}/cancel`)).body.status).toBe('cancelled');

      // Act: the node hears the cancel first, then the run.
      const got = await pollFor(node, ['task.run', 'task.cancel']);
      const cancelFirst = [...got].sort((a, b) =>
        a.envelope.command.type === 'task.cancel' ? -1 : b.envelope.command.type === 'task.cancel' ? 1 : 0,
      );
      const run = got.find((g) => g.envelope.command.type === 'task.run')!;
      const cancel = got.find((g) => g.envelope.command.type === 'task.cancel')!;
      expect(cancel.envelope.command).toMatchObject({ taskId: job, runCommandId: run.envelope.commandId });
      await serve(node, cancelFirst);

      // Assess: the run never started, the task stays cancelled, the node is free.
      expect(node.runsOf(job)).toBe(0);
      expect(node.running.size).toBe(0);
      expect((await api('GET', `/tasks/${job}`)).body).toMatchObject({ status: 'cancelled' });
      await eventually(async () =>
        expect((await api('POST', `/api/vision/models/switch/${node.nodeId}`, { model: X })).status).toBe(
          200,
        ),
      );
      const next = await generate(api);
      await eventually(async () => {
        const envelopes = await node.poll(0, 10);
        await serve(node, envelopes);
        expect(node.runsOf(next)).toBe(1);
      }, 10_000);
    },
    40_000,
  );

  it.skipIf(skip)(
    "an outcome naming an earlier run of the task changes nothing; its own run's does",
    async () => {
      const { api, node } = await setup();
      const job = await generate(api);
      const [run] = await pollFor(node, ['task.run']);
      await serve(node, [run!]);
      await eventually(async () => expect((await api('GET', `/tasks/${job}`)).body.status).toBe('running'));

      // Act: a late outcome of another run of the same task on this node.
      const late = await node.events([
        {
          type: 'task.finished',
          taskId: job,
          status: 'failed',
          files: [],
          error: 'old run',
          runCommandId: 'earlier-run',
          at: new Date().toISOString(),
        },
      ]);
      expect(late.status).toBe(200);

      // Assess: still running; its own run's outcome completes it (a failed task would stay failed).
      expect((await api('GET', `/tasks/${job}`)).body.status).toBe('running');
      await node.finish(job);
      await eventually(async () =>
        expect((await api('GET', `/tasks/${job}`)).body).toMatchObject({ status: 'completed' }),
      );
      expect((await api('GET', `/tasks/${job}`)).body.error ?? null).toBeNull();
    },
  );
});
