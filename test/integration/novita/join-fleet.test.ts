/**
 * POST /api/instances with join_fleet: the loopback Novita double runs the created instance's
 * startup command as a local process group once the instance runs, so the real agent bundle (built
 * here, served by the runtime's /install/agent.mjs) starts with the process driver and joins with
 * the instance's own join token. The instance shows its node, the node its instance.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLiveJoinToken, issueJoinToken } from '../../../functions/nodes/join-tokens.js';
import { overrideTrainingSettings } from '../../../functions/training/settings.js';
import { AgentProcess, buildAgentBundle } from '../../e2e/harness.js';
import { rentedAgentEnv } from '../../harness/burst-rig.js';
import { createBody, eventually, startNovitaRig, type NovitaRig } from './harness.js';

const registerBody = (nodeName: string) => ({
  nodeName,
  hostname: nodeName,
  arch: 'x64',
  os: 'linux',
  cpuCount: 2,
  memoryMb: 1024,
  diskGb: 10,
  agentVersion: 'test',
});

describe('Novita instances that join the fleet', () => {
  let rig: NovitaRig;
  let root: string;
  let checkpointRoot: string;
  let fleetAgent: AgentProcess | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'join-fleet-'));
    checkpointRoot = join(root, 'checkpoints');
    await mkdir(checkpointRoot);
    const assets = join(root, 'assets');
    await buildAgentBundle(join(assets, 'agent.mjs'));
    rig = await startNovitaRig({ INSTALL_ASSETS_DIR: assets, NODE_OFFLINE_AFTER_SECONDS: '6' });
    rig.fake.runStartup = {
      env: (id) => ({ ...rentedAgentEnv(root, id), FLEET_ALLOW_HOST_PATHS: checkpointRoot }),
    };
    overrideTrainingSettings(rig.rt.ctx, {
      retry: { baseSeconds: 1, maxSeconds: 1 },
      checkpointRoot,
      placementRetrySeconds: 1,
      webhooks: [],
    });
  }, 120_000);

  afterAll(async () => {
    await fleetAgent?.kill('SIGKILL');
    // The instances' agents go before the runtime they talk to.
    for (const id of [...(rig?.fake.processes.keys() ?? [])]) rig.fake.kill(id);
    await rig?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('runs the agent on the instance: a process node named after it, linked both ways, its token spent', async () => {
    const created = await rig.api(
      'POST',
      '/api/instances',
      createBody({ join_fleet: true, cluster: 'rented', labels: { pool: 'novita' }, spot: true }),
    );
    expect(created.status, created.text).toBe(201);
    const id = created.body.instanceId as string;
    const novita = [...rig.fake.instances.values()].at(-1)!;
    expect(novita.billingMode).toBe('spot');
    expect(novita.command).toMatch(/--driver process/);
    const envs = Object.fromEntries((novita.envs ?? []).map((e) => [e.key, e.value]));
    expect(envs).toMatchObject({
      FLEET_URL: rig.rt.url,
      FLEET_NODE_NAME: id,
      FLEET_DRIVER: 'process',
      FLEET_CLUSTER: 'rented',
      FLEET_LABELS: 'pool=novita',
      // The template's own environment stays.
      JUPYTER_ENABLE: '1',
    });
    const token = envs['FLEET_JOIN_TOKEN']!;
    expect(token).toMatch(/^FLEETJT-1-/);

    const view = await eventually(async () => {
      const res = await rig.api('GET', `/api/instances/${id}`);
      expect(res.status).toBe(200);
      expect(
        res.body,
        `${JSON.stringify(res.body)}\n${rig.fake.processes.get(novita.id)?.output.slice(-10).join('\n')}`,
      ).toMatchObject({ status: 'running', node: { name: id, status: 'online' } });
      return res.body;
    }, 45_000);
    expect(view).toMatchObject({ joinFleet: true, pricePerHour: 18000, spot: true });
    // The startup command fetched both files of the agent (ssh2 is bundled apart for host.install).
    const home = join(root, 'instances', novita.id);
    expect((await readdir(home)).filter((f) => f.startsWith('agent'))).toEqual(
      expect.arrayContaining(['agent.mjs', 'agent-ssh2.cjs']),
    );

    const nodes = (await rig.api('GET', '/api/nodes/')).body.nodes as Record<string, unknown>[];
    expect(nodes.filter((n) => n.name === id)).toEqual([
      expect.objectContaining({
        id: view.node.id,
        status: 'online',
        driver: 'process',
        cloud_instance: {
          provider: 'novita',
          id,
          price_per_hour: 18000,
          spot: true,
          product: 'RTX 4090 24GB',
          region: 'CN-HK-01',
        },
      }),
    ]);
    const swarm = (await rig.api('GET', `/api/swarm/nodes`)).body as {
      id: string;
      labels: Record<string, string>;
    }[];
    expect(swarm.find((n) => n.id === view.node.id)?.labels).toMatchObject({ pool: 'novita' });

    // Single use: spent by the instance's node.
    expect(await findLiveJoinToken(rig.rt.ctx, token)).toBeUndefined();
    // The token never appears in an answer of the API.
    expect(rig.answers.some((a) => a.includes(token))).toBe(false);
  }, 90_000);

  it('a join token scoped to a node name registers that name only, and a refusal spends no use', async () => {
    const { token } = await issueJoinToken(rig.rt.ctx, 'worker', { maxUses: 1, nodeName: 'scoped-a' });
    const other = await rig.api('POST', '/agent/register', registerBody('scoped-b'), {
      authorization: `Bearer ${token}`,
    });
    expect(other.status, other.text).toBe(403);
    expect(other.text).toContain('registers the node scoped-a only');
    const own = await rig.api('POST', '/agent/register', registerBody('scoped-a'), {
      authorization: `Bearer ${token}`,
    });
    expect(own.status, own.text).toBe(200);
  });

  it('refuses join_fleet input that is not right, creating nothing', async () => {
    const before = rig.fake.creates().length;
    for (const bad of [{ join_fleet: 'yes' }, { labels: { 'bad key': 'x' } }, { labels: { a: 'x,y' } }]) {
      const res = await rig.api('POST', '/api/instances', createBody(bad));
      expect(res.status, res.text).toBe(400);
    }
    expect(rig.fake.creates().length).toBe(before);
  });

  it('a spot reclaim mid-run is a preemption: the run moves to a fleet node and resumes from its checkpoint folder', async () => {
    const created = await rig.api('POST', '/api/instances', createBody({ join_fleet: true, spot: true }));
    expect(created.status, created.text).toBe(201);
    const instanceId = created.body.instanceId as string;
    const novita = [...rig.fake.instances.values()].at(-1)!;
    const node = await eventually(async () => {
      const res = await rig.api('GET', `/api/instances/${instanceId}`);
      expect(res.body.node?.status).toBe('online');
      return res.body.node as { id: string };
    }, 45_000);

    // Earlier tests' nodes take no work: the run must land on this instance.
    for (const n of (await rig.api('GET', '/api/nodes/')).body.nodes as { id: string }[]) {
      if (n.id !== node.id) expect((await rig.api('POST', `/api/nodes/${n.id}/cordon`)).status).toBe(200);
    }
    // Counts steps into its checkpoint folder until released; says where it resumed from.
    const job = await rig.api('POST', '/jobs', {
      name: `reclaim-${instanceId}`,
      image: 'unused:latest',
      command: [
        'sh',
        '-c',
        'n=$(cat "$CHECKPOINT_DIR/step" 2>/dev/null || echo 0); echo "resumed from $n"; echo "$TRAINING_ATTEMPT" >> "$CHECKPOINT_DIR/attempts"; while [ ! -f "$CHECKPOINT_DIR/release" ]; do n=$((n + 1)); echo "$n" > "$CHECKPOINT_DIR/step"; sleep 0.2; done; echo done',
      ],
      schedule: null,
      max_retries: 0,
    });
    expect(job.status, job.text).toBe(201);
    const jobId = job.body.job_id as string;
    const folder = join(checkpointRoot, jobId);
    await eventually(
      async () => expect(Number(await readFile(join(folder, 'step'), 'utf8'))).toBeGreaterThan(2),
      30_000,
    );
    const runs = async () =>
      (await rig.api('GET', `/jobs/${jobId}/runs`)).body.runs as Record<string, unknown>[];
    expect((await runs())[0]).toMatchObject({ attempt: 1, status: 'running', node_id: node.id });

    // Novita takes the instance back; the migration service sees it exited after a reclaim.
    rig.fake.reclaim(novita.id);
    const trigger = await rig.api('POST', '/api/migration/trigger', {});
    expect(trigger.status, trigger.text).toBe(202);
    await eventually(async () => {
      expect((await runs()).find((r) => r.attempt === 1)).toMatchObject({
        status: 'failed',
        preempted: true,
        error: `the instance ${instanceId} of rented node ${node.id} was reclaimed (spot)`,
      });
    }, 30_000);
    await eventually(async () => {
      const waiting = (await rig.api('GET', `/jobs/${jobId}`)).body;
      expect(waiting).toMatchObject({ retry_count: 0, max_retries: 0, preemption_count: 1 });
      expect(['retrying', 'running']).toContain(waiting.status);
    });
    const stepAtReclaim = Number(await readFile(join(folder, 'step'), 'utf8'));

    // A fleet node (process driver) joins: the next attempt runs there, from the folder's step.
    fleetAgent = new AgentProcess({
      url: rig.rt.url,
      name: `fleet-${instanceId}`,
      stateDir: join(root, 'fleet-agent'),
      heartbeatSeconds: 1,
      env: {
        ...process.env,
        FLEET_API_KEY: '',
        FLEET_DRIVER: 'process',
        FLEET_ALLOW_HOST_PATHS: checkpointRoot,
      },
    });
    const fleetNode = await fleetAgent.start();
    await eventually(async () => {
      expect((await runs()).find((r) => r.attempt === 2)).toMatchObject({
        status: 'running',
        node_id: fleetNode,
      });
    }, 30_000);
    await writeFile(join(folder, 'release'), '');
    const done = await eventually(async () => {
      const j = (await rig.api('GET', `/jobs/${jobId}`)).body;
      expect(j.status).toBe('completed');
      return j;
    }, 30_000);
    expect(done).toMatchObject({ retry_count: 0, preemption_count: 1, error_message: null });
    const last = (await runs()).find((r) => r.attempt === 2)!;
    expect(last).toMatchObject({ status: 'succeeded', exit_code: 0, preempted: false });
    expect(String(last.log_tail)).toContain(`resumed from ${stepAtReclaim}`);
    expect(await readFile(join(folder, 'attempts'), 'utf8')).toBe('1\n2\n');
  }, 150_000);
});
