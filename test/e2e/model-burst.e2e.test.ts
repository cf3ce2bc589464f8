/**
 * Model burst end to end: the local runtime, the loopback Novita double (each instance's startup
 * command runs as a local process group: the real agent bundle, process driver), and one fleet
 * node (a real agent, process driver: it serves no model). A model declared with `cloud` and a
 * `command` gets a queued task no fleet node takes: an instance is rented, joins, serves the task
 * with the model server run as a process; once the model has been idle for
 * CLOUD_BURST_MODEL_IDLE_SECONDS the instance is given back. A later task finds the day's spend
 * cap reached: no second instance, and the catalogue says why (as it said the instance cap while
 * the first instance was busy).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../functions/core/events.js';
import { startBurstRig, type BurstRig } from '../harness/burst-rig.js';
import { freePort } from '../harness/free-port.js';
import { SERVER_SCRIPT } from '../harness/model-server-image.js';
import type { NovitaRig } from '../integration/novita/harness.js';
import { eventually } from './harness.js';

const CLOUD = { product: 'RTX 4090 24GB', region: 'CN-HK-01', max_price_per_hour: 20000, spot: true };
const MODEL = 'burst-model-e2e';
const OTHER = 'burst-model-e2e-other';

describe('a model whose queue the fleet cannot serve bursts to a rented instance', () => {
  let burstRig: BurstRig | undefined;
  let rig: NovitaRig;
  let fleetNode: string;
  let serverPort: number;

  const api = (method: string, path: string, body?: unknown) => rig.api(method, path, body);
  const submit = async (model = MODEL, gate?: string) => {
    const res = await api('POST', '/tasks', {
      task_type: 'image_generation',
      model_name: model,
      parameters: { prompt: 'a lighthouse', width: 64, height: 64, steps: 2, ...(gate ? { gate } : {}) },
    });
    expect(res.status, res.text).toBe(200);
    return res.body.task_id as string;
  };
  const placementRun = () => emit(rig.rt.ctx, { type: 'placement.run', reason: 'test' });
  const catalogued = async (model = MODEL) =>
    ((await api('GET', '/models/catalog')).body.models as Record<string, unknown>[]).find(
      (m) => m.id === model,
    )!;

  beforeAll(async () => {
    serverPort = await freePort();
    burstRig = await startBurstRig({
      prefix: 'model-burst-',
      env: {
        NODE_OFFLINE_AFTER_SECONDS: '6',
        CLOUD_BURST_TEMPLATE_ID: 'template-123',
        CLOUD_BURST_MAX_INSTANCES: '1',
        // One instance at 18000 an hour (an hour at least) plus up to 20000 passes it.
        CLOUD_BURST_MAX_SPEND_PER_DAY: '30000',
        CLOUD_BURST_MODEL_IDLE_SECONDS: '2',
      },
    });
    ({ rig, fleetNode } = burstRig);
  }, 120_000);

  afterAll(async () => {
    await burstRig?.stop();
  });

  it('rents for the queue, serves it on the rented node, gives the instance back when idle; the instance and spend caps stop other bursts', async () => {
    const declaration = {
      kind: 'image',
      image: 'unused:latest',
      port: serverPort,
      protocol: 'vision-generate',
      path: '/generate',
      gpuMemoryMb: 0,
      loadSeconds: 2,
      env: { PORT: String(serverPort), STEP_MS: '5' },
      cloud: CLOUD,
    };
    // A rented node runs processes only: `cloud` without `command` is refused, and nothing is stored.
    const refused = await api('PUT', `/models/catalog/${MODEL}`, declaration);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.text).toContain('cloud needs command');
    expect((await catalogued()) ?? null).toBeNull();
    const declared = await api('PUT', `/models/catalog/${MODEL}`, {
      ...declaration,
      command: [process.execPath, SERVER_SCRIPT],
    });
    expect(declared.status, declared.text).toBe(200);
    expect(declared.body).toMatchObject({ cloud: { ...CLOUD, always: false } });

    const other = await api('PUT', `/models/catalog/${OTHER}`, {
      ...declaration,
      command: [process.execPath, SERVER_SCRIPT],
    });
    expect(other.status, other.text).toBe(200);

    // The fleet's one node runs no model server: the task's model bursts. The server holds the
    // task (its gate) until released, so the instance is busy meanwhile.
    const first = await submit(MODEL, 'held');
    const running = await eventually(
      'the task running on the rented node',
      async () => {
        const t = (await api('GET', `/tasks/${first}`)).body;
        expect(t.status, JSON.stringify(t)).toBe('running');
        return t;
      },
      90_000,
    );
    expect(rig.fake.creates()).toHaveLength(1);
    const novita = [...rig.fake.instances.values()].at(-1)!;
    expect(novita.billingMode).toBe('spot');
    const instanceId = (await api('GET', '/api/instances')).body.instances[0].id as string;
    const view = (await api('GET', `/api/instances/${instanceId}`)).body;
    expect(view).toMatchObject({ burstModel: MODEL, joinFleet: true, node: { status: 'online' } });
    const rentedNode = view.node.id as string;
    expect(rentedNode).not.toBe(fleetNode);
    expect(running.assigned_worker).toBe(rentedNode);
    expect(await catalogued()).toMatchObject({ burst: { instanceId, reason: null } });

    // Another cloud model's task: the rented node is this model's only, and the instance cap is 1.
    const blocked = await submit(OTHER);
    await eventually('the other model’s burst refused by the instance cap', async () =>
      expect(await catalogued(OTHER)).toMatchObject({
        burst: {
          instanceId: null,
          reason: expect.stringContaining(
            'burst refused: 1 rented instance already, the most CLOUD_BURST_MAX_INSTANCES (1) allows',
          ),
        },
      }),
    );
    expect((await api('GET', `/tasks/${blocked}`)).body).toMatchObject({ status: 'queued' });
    expect(rig.fake.creates()).toHaveLength(1);

    const released = await fetch(`http://127.0.0.1:${serverPort}/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ gate: 'held' }),
    });
    expect(released.status).toBe(200);
    const done = await eventually('the task done', async () => {
      const t = (await api('GET', `/tasks/${first}`)).body;
      expect(t.status, JSON.stringify(t)).toBe('completed');
      return t;
    });
    expect(done.assigned_worker).toBe(rentedNode);

    // Nothing queued or running for the idle setting: the instance goes back.
    await eventually('the idle instance deleted', async () => {
      await placementRun();
      expect(rig.fake.deletes().map((d) => (d.body as { instanceId: string }).instanceId)).toEqual([
        novita.id,
      ]);
    });
    expect((await api('GET', `/api/instances/${instanceId}`)).body.terminatedAt).toEqual(expect.any(String));
    expect(rig.fake.processes.get(novita.id)).toBeUndefined();

    // With the instance back, the other model's queued task would need a second one: the day's
    // spend cap refuses it now.
    await eventually('the burst refused by the spend cap', async () => {
      await placementRun();
      expect(await catalogued(OTHER)).toMatchObject({
        burst: {
          instanceId: null,
          reason: expect.stringContaining(
            "burst refused: today's burst spend 18000 plus up to 20000 for an hour would pass CLOUD_BURST_MAX_SPEND_PER_DAY (30000)",
          ),
        },
      });
    });
    expect(rig.fake.creates()).toHaveLength(1);
    expect((await api('GET', `/tasks/${blocked}`)).body).toMatchObject({ status: 'queued' });
  }, 240_000);
});
