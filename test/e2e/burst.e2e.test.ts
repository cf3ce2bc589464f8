/**
 * Burst end to end: the local runtime, the loopback Novita double (it runs each instance's startup
 * command as a local process group, so rented instances run the real agent bundle with the process
 * driver), and one fleet node (a real agent, process driver). The fleet is full; a job with
 * `cloud` rents an instance that joins and takes the run; the double reclaims it mid-run; the run
 * resumes on a second rented instance from the checkpoint the first one synced to the artifacts
 * store (each instance keeps checkpoints in a folder of its own, so step 5 can only come through
 * the store) and completes; the instance is given back; the day's spend cap then stops another
 * burst with its reason.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overrideTrainingSettings } from '../../functions/training/settings.js';
import type { NovitaRig } from '../integration/novita/harness.js';
import { startBurstRig, type BurstRig } from '../harness/burst-rig.js';
import { eventually } from './harness.js';

const CPUS = String(cpus().length);

/** Counts steps into its checkpoint folder until released; says where it resumed from. */
const STEPS_UNTIL_RELEASED = [
  'sh',
  '-c',
  'n=$(cat "$CHECKPOINT_DIR/step" 2>/dev/null || echo 0); echo "resumed from $n"; echo "$TRAINING_ATTEMPT" >> "$CHECKPOINT_DIR/attempts"; while [ ! -f "$CHECKPOINT_DIR/release" ]; do n=$((n + 1)); echo "$n" > "$CHECKPOINT_DIR/step"; sleep 0.2; done; echo done',
];

/** Resumes from `$CHECKPOINT_DIR/step`; attempt 1 stops moving at step 5, later ones go on to 8. */
const TRAIN = [
  'sh',
  '-c',
  [
    's=$(cat "$CHECKPOINT_DIR/step" 2>/dev/null || echo 0)',
    'echo "attempt $TRAINING_ATTEMPT resumed from $s"',
    'echo "$s" > "$CHECKPOINT_DIR/resumed-a$TRAINING_ATTEMPT"',
    'while [ "$s" -lt 8 ]; do s=$((s + 1)); echo "$s" > "$CHECKPOINT_DIR/step"',
    'if [ "$s" -eq 5 ] && [ "$TRAINING_ATTEMPT" = 1 ]; then echo 5 > "$CHECKPOINT_DIR/reached-5"; while true; do sleep 1; done; fi',
    'done',
    'echo done',
  ].join('; '),
];

const CLOUD = { product: 'RTX 4090 24GB', region: 'CN-HK-01', max_price_per_hour: 20000, spot: true };

describe('burst to rented Novita instances that join the fleet', () => {
  let burstRig: BurstRig | undefined;
  let rig: NovitaRig;
  let root: string;
  let checkpointRoot: string;
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
  const instanceCheckpoints = (novitaId: string) => join(root, 'instances', novitaId, 'checkpoints');
  const stored = async (id: string) =>
    ((await api('GET', `/jobs/${id}/checkpoint`)).body.files as { name: string; attempt: number }[]).map(
      (f) => [f.name, f.attempt],
    );

  beforeAll(async () => {
    burstRig = await startBurstRig({
      prefix: 'burst-',
      env: {
        NODE_OFFLINE_AFTER_SECONDS: '6',
        CLOUD_BURST_TEMPLATE_ID: 'template-123',
        CLOUD_BURST_MAX_INSTANCES: '2',
        CLOUD_BURST_MAX_SPEND_PER_DAY: '50000',
        TRAINING_CHECKPOINT_SYNC_SECONDS: '1',
      },
      prepare: async (dir) => {
        root = dir;
        checkpointRoot = join(dir, 'checkpoints');
        await mkdir(checkpointRoot);
      },
      configure: (started) =>
        overrideTrainingSettings(started.rt.ctx, {
          retry: { baseSeconds: 1, maxSeconds: 1 },
          checkpointRoot,
          placementRetrySeconds: 1,
          webhooks: [],
        }),
      // Each instance its own checkpoint folder, allowed by its own policy.
      instanceEnv: (_dir, id) => ({
        FLEET_CHECKPOINT_ROOT: instanceCheckpoints(id),
        FLEET_ALLOW_HOST_PATHS: instanceCheckpoints(id),
      }),
      fleetEnv: () => ({ FLEET_ALLOW_HOST_PATHS: checkpointRoot }),
    });
    ({ rig, fleetNode } = burstRig);
  }, 120_000);

  afterAll(async () => {
    await burstRig?.stop();
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
    const id = await createJob('bursty', { cloud: CLOUD, command: TRAIN });
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

    // The process driver syncs the run's folder while it runs: step 5 is in the store.
    await eventually(
      'step 5 stored by attempt 1',
      async () =>
        expect(await stored(id)).toEqual([
          ['reached-5', 1],
          ['resumed-a1', 1],
          ['step', 1],
        ]),
      30_000,
    );
    expect(await readFile(join(instanceCheckpoints(novitaA.id), id, 'step'), 'utf8')).toBe('5\n');

    // Novita reclaims it; the migration service sees it: a preemption, a second instance.
    rig.fake.reclaim(novitaA.id);
    expect((await api('POST', '/api/migration/trigger', {})).status).toBe(202);
    const done = await eventually(
      'the job completed on the second rented node',
      async () => {
        const j = await job(id);
        expect(j.status, JSON.stringify(await runs(id))).toBe('completed');
        return j;
      },
      90_000,
    );
    expect(done).toMatchObject({ retry_count: 0, preemption_count: 1, error_message: null });
    const all = await runs(id);
    const second = all.find((x) => x.attempt === 2)!;
    expect(second).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(second.node_id).not.toBe(first.node_id);
    expect(second.node_id).not.toBe(fleetNode);
    expect(all.find((x) => x.attempt === 1)).toMatchObject({ status: 'failed', preempted: true });
    expect(String(second.log_tail)).toContain('attempt 2 resumed from 5');
    expect(rig.fake.creates()).toHaveLength(2);
    const novitaB = [...rig.fake.instances.values()].at(-1)!;
    expect(novitaB.id).not.toBe(novitaA.id);
    expect(rig.fake.deletes()[0]?.body).toMatchObject({ instanceId: novitaA.id });
    expect((await api('GET', `/api/instances/${instanceA}`)).body.terminatedAt).toEqual(expect.any(String));

    // Step 5 came to the second instance's own folder through the store; the first never saw step 8.
    const folderB = join(instanceCheckpoints(novitaB.id), id);
    expect(await readFile(join(folderB, 'resumed-a2'), 'utf8')).toBe('5\n');
    expect(await readFile(join(folderB, 'step'), 'utf8')).toBe('8\n');
    expect((await readdir(join(instanceCheckpoints(novitaA.id), id))).sort()).toEqual([
      'reached-5',
      'resumed-a1',
      'step',
    ]);
    // The upload after the exit: step 8 and attempt 2's own file, by attempt 2.
    expect(await stored(id)).toEqual([
      ['reached-5', 1],
      ['resumed-a1', 1],
      ['resumed-a2', 2],
      ['step', 2],
    ]);

    // The second instance is given back once the job has ended.
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
