/**
 * Burst end to end: the local runtime, the loopback Novita double (it runs each instance's startup
 * command as a local process group, so rented instances run the real agent bundle with the process
 * driver), and one fleet node (a real agent, process driver). The fleet is full; a job with
 * `cloud` rents an instance that joins and takes the run; the double reclaims it mid-run; the run
 * resumes from its checkpoint folder on a second rented instance and completes; the instance is
 * given back; the day's spend cap then stops another burst with its reason.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overrideTrainingSettings } from '../../functions/training/settings.js';
import { startNovitaRig, type NovitaRig } from '../integration/novita/harness.js';
import { AgentProcess, buildAgentBundle, eventually } from './harness.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
const CPUS = String(cpus().length);

/** Counts steps into its checkpoint folder until released; says where it resumed from. */
const STEPS_UNTIL_RELEASED = [
  'sh',
  '-c',
  'n=$(cat "$CHECKPOINT_DIR/step" 2>/dev/null || echo 0); echo "resumed from $n"; echo "$TRAINING_ATTEMPT" >> "$CHECKPOINT_DIR/attempts"; while [ ! -f "$CHECKPOINT_DIR/release" ]; do n=$((n + 1)); echo "$n" > "$CHECKPOINT_DIR/step"; sleep 0.2; done; echo done',
];

const CLOUD = { product: 'RTX 4090 24GB', region: 'CN-HK-01', max_price_per_hour: 20000, spot: true };

describe('burst to rented Novita instances that join the fleet', () => {
  let rig: NovitaRig;
  let root: string;
  let checkpointRoot: string;
  let fleet: AgentProcess;
  let fleetNode: string;

  const api = (method: string, path: string, body?: unknown) => rig.api(method, path, body);
  const job = async (id: string) => (await api('GET', `/jobs/${id}`)).body;
  const runs = async (id: string) =>
    (await api('GET', `/jobs/${id}/runs`)).body.runs as Record<string, unknown>[];
  const createJob = async (name: string, extra: Record<string, unknown> = {}) => {
    const res = await api('POST', '/jobs', {
      name,
      image: 'unused:latest',
      command: STEPS_UNTIL_RELEASED,
      schedule: null,
      max_retries: 0,
      resources: { cpu_limit: CPUS },
      ...extra,
    });
    expect(res.status, res.text).toBe(201);
    return res.body.job_id as string;
  };
  const rentedNode = (novitaId: string) => rig.fake.processes.get(novitaId);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'burst-'));
    checkpointRoot = join(root, 'checkpoints');
    await mkdir(checkpointRoot);
    const assets = join(root, 'assets');
    await buildAgentBundle(join(assets, 'agent.mjs'));
    // Rented instances are told the control plane's URL (INSTALL_CONTROL_PLANE_URL): its port is chosen first.
    const port = await freePort();
    rig = await startNovitaRig(
      {
        INSTALL_CONTROL_PLANE_URL: `http://127.0.0.1:${port}`,
        INSTALL_ASSETS_DIR: assets,
        NODE_OFFLINE_AFTER_SECONDS: '6',
        CLOUD_BURST_TEMPLATE_ID: 'template-123',
        CLOUD_BURST_MAX_INSTANCES: '2',
        CLOUD_BURST_MAX_SPEND_PER_DAY: '50000',
      },
      { port },
    );
    overrideTrainingSettings(rig.rt.ctx, {
      retry: { baseSeconds: 1, maxSeconds: 1 },
      checkpointRoot,
      placementRetrySeconds: 1,
      webhooks: [],
    });
    rig.fake.runStartup = {
      env: (id) => ({
        PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
        HOME: root,
        FLEET_AGENT_HOME: join(root, 'instances', id),
        FLEET_HEARTBEAT: '1',
        FLEET_ALLOW_HOST_PATHS: checkpointRoot,
      }),
    };
    fleet = new AgentProcess({
      url: rig.rt.url,
      name: 'fleet-a',
      stateDir: join(root, 'fleet-a'),
      heartbeatSeconds: 1,
      env: {
        ...process.env,
        FLEET_API_KEY: '',
        FLEET_DRIVER: 'process',
        FLEET_ALLOW_HOST_PATHS: checkpointRoot,
      },
    });
    fleetNode = await fleet.start();
  }, 120_000);

  afterAll(async () => {
    await fleet?.kill('SIGKILL');
    for (const id of [...(rig?.fake.processes.keys() ?? [])]) rig.fake.kill(id);
    await rig?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('bursts when the fleet is full, survives a reclaim, gives the instance back, and the spend cap stops the next burst', async () => {
    // The fleet's one node is full.
    const filler = await createJob('filler');
    await eventually(
      'the filler running on the fleet node',
      async () => expect((await runs(filler))[0]).toMatchObject({ status: 'running', node_id: fleetNode }),
      30_000,
    );

    // A job with `cloud` rents an instance; it joins and takes the run.
    const id = await createJob('bursty', { cloud: CLOUD });
    expect((await job(id)).cloud).toEqual({ ...CLOUD, always: false });
    const first = await eventually(
      'the run on the first rented node',
      async () => {
        const r = (await runs(id))[0]!;
        expect(r, JSON.stringify(r)).toMatchObject({ attempt: 1, status: 'running' });
        return r;
      },
      60_000,
    );
    expect(rig.fake.creates()).toHaveLength(1);
    const novitaA = [...rig.fake.instances.values()].at(-1)!;
    expect(novitaA.billingMode).toBe('spot');
    const instanceA = (await api('GET', '/api/instances')).body.instances[0].id as string;
    const viewA = (await api('GET', `/api/instances/${instanceA}`)).body;
    expect(viewA).toMatchObject({
      burstFor: id,
      joinFleet: true,
      node: { id: first.node_id, status: 'online' },
    });
    const folder = join(checkpointRoot, id);
    await eventually(
      'steps written',
      async () => expect(Number(await readFile(join(folder, 'step'), 'utf8'))).toBeGreaterThan(2),
      30_000,
    );

    // Novita reclaims it; the migration service sees it: a preemption, a second instance.
    rig.fake.reclaim(novitaA.id);
    expect((await api('POST', '/api/migration/trigger', {})).status).toBe(202);
    const second = await eventually(
      'the run resumed on the second rented node',
      async () => {
        const r = (await runs(id)).find((x) => x.attempt === 2)!;
        expect(r, JSON.stringify(await runs(id))).toMatchObject({ status: 'running' });
        return r;
      },
      60_000,
    );
    expect(second.node_id).not.toBe(first.node_id);
    expect(second.node_id).not.toBe(fleetNode);
    expect((await runs(id)).find((x) => x.attempt === 1)).toMatchObject({
      status: 'failed',
      preempted: true,
    });
    expect(rig.fake.creates()).toHaveLength(2);
    expect(rig.fake.deletes().map((d) => (d.body as { instanceId: string }).instanceId)).toEqual([
      novitaA.id,
    ]);
    expect((await api('GET', `/api/instances/${instanceA}`)).body.terminatedAt).toEqual(expect.any(String));

    await writeFile(join(folder, 'release'), '');
    const done = await eventually(
      'the job completed',
      async () => {
        const j = await job(id);
        expect(j.status).toBe('completed');
        return j;
      },
      30_000,
    );
    expect(done).toMatchObject({ retry_count: 0, preemption_count: 1, error_message: null });
    const last = (await runs(id)).find((x) => x.attempt === 2)!;
    expect(last).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(String(last.log_tail)).toMatch(/resumed from [1-9]\d*/);
    expect(await readFile(join(folder, 'attempts'), 'utf8')).toBe('1\n2\n');

    // The second instance is given back once the job has ended.
    const novitaB = [...rig.fake.instances.values()].at(-1)!;
    await eventually('the second instance deleted', async () =>
      expect(rig.fake.deletes().map((d) => (d.body as { instanceId: string }).instanceId)).toEqual([
        novitaA.id,
        novitaB.id,
      ]),
    );
    expect(rentedNode(novitaB.id)).toBeUndefined();

    // Two instances today at 18000 an hour (an hour at least each) plus 20000: past the 50000 cap.
    const capped = await createJob('capped', { cloud: CLOUD });
    await eventually(
      'the burst refused by the spend cap',
      async () =>
        expect((await runs(capped))[0]).toMatchObject({
          status: 'pending',
          waiting_reason: expect.stringContaining(
            "burst refused: today's burst spend 36000 plus up to 20000 for an hour would pass CLOUD_BURST_MAX_SPEND_PER_DAY (50000)",
          ),
        }),
      30_000,
    );
    expect(rig.fake.creates()).toHaveLength(2);
    await writeFile(join(checkpointRoot, filler, 'release'), '');
  }, 240_000);
});
