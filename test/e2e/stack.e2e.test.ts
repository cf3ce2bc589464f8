/**
 * The deployed shape end to end: the synthesized stack run by start:stack on moto (each route in
 * the bundle of the function the template integrates it with, the events worker on its SQS event
 * source, schedules fired by the driver, the WebSocket API and its Management API), two REAL
 * agents on SQS command queues, and Podman. The main paths of the orchestrator, training, task
 * queue (cluster and vision APIs) and fleet operations suites, once each.
 *
 * The full orchestrator and task-queue suites run through the stack too with
 * FLEET_E2E_RUNTIME=stack (npm run test:e2e:stack). With FLEET_E2E_STACK_OUTPUTS=<file written by
 * `cdk deploy --outputs-file`> this suite runs against that deployment instead.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MAINTENANCE_SCHEDULE } from '../../functions/commander/maintenance/schedule.js';
import { LABELS } from '../../protocol/messages.js';
import {
  agentEnv,
  agentLogTails,
  agentProcesses,
  awaitNodeStatus,
  expectAgentChannel,
  putModelServer,
  startAgents,
  tearDownFleet,
} from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { ensureModelServerImage } from '../harness/model-server-image.js';
import {
  bothServices,
  describeWith,
  engine as dockerClient,
  requireEngine,
  requireMoto,
  uniqueName,
} from '../harness/services.js';
import {
  AgentProcess,
  call,
  engineContainers,
  eventually,
  RUN_UNTIL_TERM,
  startControlPlane,
  type ControlPlane,
} from './harness.js';

const engineStatus = requireEngine();
const motoStatus = requireMoto();
const status = bothServices(engineStatus, motoStatus);

describeWith(status, 'the synthesized stack on moto (start:stack), two real agents, Podman', () => {
  const runId = uniqueName('e2e-stk');
  const nodeNames = [`${runId}-a`, `${runId}-b`];
  const MODEL = `${runId}-painter`;
  let docker: Docker;
  let cp: ControlPlane;
  let stateRoot: string;
  let checkpointRoot: string;
  let modelImage: string;
  let agents: AgentProcess[] = [];

  const api = (method: string, path: string, body?: unknown) => call(cp.url, method, path, body);
  const mine = (labels: Record<string, string> = {}) => engineContainers(docker, nodeNames, labels);
  const agentLogs = () => agentLogTails(agents, 20);

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    modelImage = await ensureModelServerImage(docker);
    stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
    checkpointRoot = join(stateRoot, 'checkpoints');
    cp = await startControlPlane({
      moto: true,
      stack: true,
      env: {
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: '6',
        COMMAND_WAIT_MS: '8000',
        TRAINING_CHECKPOINT_ROOT: checkpointRoot,
        TRAINING_RETRY_BASE_SECONDS: '1',
        TRAINING_PLACEMENT_RETRY_SECONDS: '1',
      },
    });
    expect(cp.kind).toBe('stack');
    agents = agentProcesses({
      url: cp.url,
      names: nodeNames,
      stateRoot,
      env: agentEnv({
        FLEET_LABELS: '',
        // The node's own policy lets runs mount this suite's checkpoint root (not the default one).
        FLEET_ALLOW_HOST_PATHS: checkpointRoot,
      }),
    });
    await startAgents(agents, 90_000);
    expectAgentChannel(agents, 'sqs');
  }, 240_000);

  afterAll(async () => {
    await tearDownFleet({ agents, docker, nodeNames, controlPlane: cp, stateRoot });
    if (docker) expect(await mine()).toEqual([]);
  }, 90_000);

  it('fleet: both nodes register through the agent function and are online in /api/nodes/', async () => {
    await awaitNodeStatus(
      cp.url,
      agents.map((a) => a.nodeId),
      'online',
      30_000,
    );
  });

  it("orchestrator: start two copies over the agents' SQS queues, list them, stop one", async () => {
    const res = await api('POST', `/containers/${BUSYBOX_IMAGE}/start`, {
      count: 2,
      resources: { cpu_limit: '0.5', memory_limit: '64m' },
      command: RUN_UNTIL_TERM,
    });
    expect(res.status, `${res.text}\n${agentLogs()}`).toBe(200);
    const started = res.body.started as string[];
    expect(started).toHaveLength(2);
    const running = await mine({ [LABELS.image]: BUSYBOX_IMAGE });
    expect(running.map((c) => c.state)).toEqual(['running', 'running']);
    expect(running.map((c) => c.labels[LABELS.instance]).sort()).toEqual([...started].sort());

    const list = await api('GET', '/containers');
    expect(list.status, list.text).toBe(200);
    expect((list.body.containers as { id: string }[]).filter((c) => started.includes(c.id))).toHaveLength(2);

    const stop = await api('POST', `/containers/${BUSYBOX_IMAGE}/stop`, { instanceId: started[0] });
    expect(stop.status, `${stop.text}\n${agentLogs()}`).toBe(200);
    expect(stop.body).toEqual({ stopped: true });
    const [stopped] = await mine({ [LABELS.instance]: started[0]! });
    expect(stopped?.state).toBe('exited');
  });

  it('training: a job that fails once, then succeeds, completes with two runs (retries through the events worker)', async () => {
    const command = [
      'sh',
      '-c',
      'n=$(cat "$CHECKPOINT_DIR/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$CHECKPOINT_DIR/count"; if [ "$n" -lt 2 ]; then exit 1; fi; echo done',
    ];
    const created = await api('POST', '/jobs', {
      name: uniqueName('job'),
      image: BUSYBOX_IMAGE,
      command,
      schedule: null,
      max_retries: 2,
      checkpoint_path: '/ckpt',
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.job_id as string;
    const job = await eventually(
      `job ${id} completed`,
      async () => {
        const res = await api('GET', `/jobs/${id}`);
        expect(res.body.status, `${res.text}\n${agentLogs()}`).toBe('completed');
        return res.body;
      },
      90_000,
      250,
    );
    expect(job).toMatchObject({ retry_count: 1, error_message: null });
    const runs = await api('GET', `/jobs/${id}/runs`);
    expect(runs.body.runs.map((r: { attempt: number; status: string }) => [r.attempt, r.status])).toEqual([
      [2, 'succeeded'],
      [1, 'failed'],
    ]);
    // Both runs mounted the job's checkpoint folder (a deployed stack's root is its TRAINING_CHECKPOINT_ROOT).
    const root = process.env.FLEET_E2E_STACK_OUTPUTS
      ? (process.env.FLEET_E2E_CHECKPOINT_ROOT ?? '/var/lib/fleet/checkpoints')
      : checkpointRoot;
    expect(await readFile(join(root, id, 'count'), 'utf8')).toBe('2\n');
  }, 120_000);

  it('task queue: a task through the cluster API and one through the vision API run on a model server', async () => {
    await putModelServer(cp.url, MODEL, modelImage);
    const task = await api('POST', '/tasks', {
      task_type: 'image_generation',
      model_name: MODEL,
      parameters: { prompt: 'a lighthouse', width: 64, height: 64, steps: 2 },
      priority: 'normal',
    });
    expect(task.status, task.text).toBe(200);
    const vision = await api('POST', '/api/vision/generate', {
      prompt: 'a harbour',
      model: MODEL,
      width: 64,
      height: 64,
      steps: 2,
    });
    expect(vision.status, vision.text).toBe(200);
    const taskId = task.body.task_id as string;
    const jobId = vision.body.job_id as string;
    await eventually(
      'both tasks completed',
      async () => {
        const t = await api('GET', `/tasks/${taskId}`);
        expect(t.body.status, `${t.text}\n${agentLogs()}`).toBe('completed');
        const v = await api('GET', `/api/vision/jobs/${jobId}`);
        expect(v.body.status, v.text).toBe('completed');
      },
      120_000,
      500,
    );
    expect(await mine({ [LABELS.kind]: 'model' })).not.toEqual([]);
  }, 150_000);

  it('fleet operations: maintenance schedule on the Scheduler API, a disk audit answered by the agent', async () => {
    const started = await api('POST', '/api/maintenance/start');
    expect(started.status, started.text).toBe(200);
    expect(started.body).toMatchObject({ enabled: true, next_run: expect.any(String) });
    expect((await api('GET', '/api/maintenance/status')).body.enabled).toBe(true);
    // The maintenance schedule, created through the Scheduler API in the deployment's group.
    expect((await cp.ctx.scheduler.list()).map((s) => s.name)).toContain(MAINTENANCE_SCHEDULE);

    const audit = await api('POST', '/api/maintenance/disk/audit', { node_id: nodeNames[0] });
    expect(audit.status, `${audit.text}\n${agentLogs()}`).toBe(200);
    expect(audit.body.nodes).toEqual([
      expect.objectContaining({ node_id: agents[0]!.nodeId, name: nodeNames[0], status: 'completed' }),
    ]);

    const stopped = await api('POST', '/api/maintenance/stop');
    expect(stopped.body).toMatchObject({ enabled: false, next_run: null });
  }, 60_000);

  it('live API: a WebSocket client gets its first frame, pushed by the events worker through the Management API', async () => {
    const ws = new WebSocket(`${cp.wsUrl}?channel=metrics`);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the frame's JSON
    const first = await new Promise<any>((resolve, reject) => {
      ws.once('message', (data) => resolve(JSON.parse(data.toString())));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`handshake answered ${res.statusCode}`)),
      );
    });
    expect(first).toMatchObject({ type: 'metrics', timestamp: expect.any(String) });
    for (const name of nodeNames) expect(first.nodes[name]).toMatchObject({ status: 'online' });
    ws.close();
  }, 30_000);
});
