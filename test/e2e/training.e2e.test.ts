/**
 * The Training Job Orchestrator API end to end: the local runtime (embedded control plane in this
 * process), ONE real agent as a child process (agent/main.ts) and Podman. Jobs run the busybox
 * test image; their containers keep state in the checkpoint folder the control plane mounts
 * (`<checkpoint root>/<job_id>` on the host, CHECKPOINT_DIR inside), a temp folder here, so the
 * test can read what a container wrote and tell a waiting container to finish.
 *
 * Everything goes through the HTTP API, plus the engine (dockerode, by the agent's labels) and
 * the runtime's scheduler port; the periodic sweeps (nodes.sweep, jobs.repair) are fired when a
 * test needs them instead of waited for. The agent is SIGKILLed and restarted once. Containers are found by label fleet.node = this suite's node
 * name, so other suites sharing the engine are never counted nor touched; afterAll removes them.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { emit } from '../../functions/core/events.js';
import { LABELS } from '../../protocol/messages.js';
import { repairJobs } from '../../functions/training/repair.js';
import { overrideTrainingSettings } from '../../functions/training/settings.js';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { agentEnv, awaitNodeStatus } from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { describeWith, engine as dockerClient, requireEngine, uniqueName } from '../harness/services.js';
import { AgentProcess, call, engineContainers, eventually, removeNodeContainers, sleep } from './harness.js';

/** A node is offline after this many seconds without a heartbeat; the agent beats every second. */
const OFFLINE_AFTER_S = 6;

/** Counts its attempts in the checkpoint folder: fails on the first two, succeeds on the third. */
const FAIL_TWICE = [
  'sh',
  '-c',
  [
    'n=$(cat "$CHECKPOINT_DIR/count" 2>/dev/null || echo 0)',
    'n=$((n + 1))',
    'echo "$n" > "$CHECKPOINT_DIR/count"',
    'echo "$TRAINING_ATTEMPT" >> "$CHECKPOINT_DIR/attempts"',
    'echo "attempt $n of job $TRAINING_JOB_ID"',
    'if [ "$n" -lt 3 ]; then echo "RuntimeError: CUDA out of memory"; exit 1; fi',
    'echo "training done"',
  ].join('; '),
];

const ALWAYS_FAILS = ['sh', '-c', 'echo "epoch 1"; echo "loss: nan"; echo "ValueError: loss is NaN"; exit 3'];

/** Runs until the test writes `release` into its checkpoint folder, then exits 0. */
const UNTIL_RELEASED = [
  'sh',
  '-c',
  'echo "$TRAINING_ATTEMPT" >> "$CHECKPOINT_DIR/started"; while [ ! -f "$CHECKPOINT_DIR/release" ]; do sleep 1; done; echo released',
];

describeWith(requireEngine(), 'training jobs end to end: local runtime, one real agent, Podman', () => {
  const runId = uniqueName('e2e-train');
  const nodeName = `${runId}-a`;
  let docker: Docker;
  let rt: Runtime;
  let root: string;
  let checkpointRoot: string;
  let agent: AgentProcess;

  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const mine = (labels: Record<string, string> = {}) => engineContainers(docker, [nodeName], labels);
  const checkpointFile = (jobId: string, file: string) => join(checkpointRoot, jobId, file);
  const jobOf = async (jobId: string) => {
    const res = await api('GET', `/jobs/${jobId}`);
    expect(res.status, res.text).toBe(200);
    return res.body;
  };
  const runsOf = async (jobId: string) => {
    const res = await api('GET', `/jobs/${jobId}/runs`);
    expect(res.status, res.text).toBe(200);
    return res.body;
  };
  const createJob = async (body: Record<string, unknown>) => {
    const res = await api('POST', '/jobs', { name: uniqueName('job'), image: BUSYBOX_IMAGE, ...body });
    expect(res.status, res.text).toBe(201);
    return res.body.job_id as string;
  };
  /** Waits for a job status; the failure message carries the job and the agent's last log lines. */
  const statusOf = (jobId: string, status: string, timeoutMs: number) =>
    eventually(
      `job ${jobId} ${status}`,
      async () => {
        const job = await jobOf(jobId);
        expect(job.status, `${JSON.stringify(job)}\n${agent.logTail(20)}`).toBe(status);
        return job;
      },
      timeoutMs,
      250,
    );

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    root = await mkdtemp(join(tmpdir(), `${runId}-`));
    checkpointRoot = join(root, 'checkpoints');
    await mkdir(checkpointRoot);
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_S),
        AWS_ENDPOINT_URL: undefined,
      },
    });
    expect(rt.ctx.mode).toBe('embedded');
    // Short backoff so three attempts take seconds; the checkpoint root is a folder the test reads.
    overrideTrainingSettings(rt.ctx, {
      retry: { baseSeconds: 1, maxSeconds: 2 },
      checkpointRoot,
      placementRetrySeconds: 1,
      webhooks: [],
    });
    agent = new AgentProcess({
      url: rt.url,
      name: nodeName,
      stateDir: join(root, 'agent'),
      heartbeatSeconds: 1,
      // The node's owner lets containers mount the checkpoint root (the agent's policy refuses other host paths).
      env: agentEnv({ FLEET_ALLOW_HOST_PATHS: checkpointRoot }),
    });
    await agent.start();
    await awaitNodeStatus(rt.url, [agent.nodeId]);
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    if (docker) await removeNodeContainers(docker, [nodeName]);
    await rt?.stop();
    if (root) await rm(root, { recursive: true, force: true });
    if (docker) expect(await mine()).toEqual([]);
  }, 60_000);

  it('a job that fails twice, then succeeds, ends completed with two retries and three runs', async () => {
    const id = await createJob({
      command: FAIL_TWICE,
      schedule: null,
      max_retries: 3,
      checkpoint_path: '/ckpt',
    });

    const job = await statusOf(id, 'completed', 90_000);
    expect(job).toMatchObject({ retry_count: 2, max_retries: 3, error_message: null });
    expect(job.completed_at >= job.started_at).toBe(true);

    const runs = await runsOf(id);
    expect(runs.total).toBe(3);
    expect(
      runs.runs.map((r: Record<string, unknown>) => [r.attempt, r.status, r.exit_code, r.node_id]),
    ).toEqual([
      [3, 'succeeded', 0, agent.nodeId],
      [2, 'failed', 1, agent.nodeId],
      [1, 'failed', 1, agent.nodeId],
    ]);
    for (const r of runs.runs) {
      expect(r.ended_at >= r.started_at).toBe(true);
      expect(r.run_id).toMatch(new RegExp(`^${id}-\\d{17}-a${r.attempt}$`));
    }

    // The containers really ran, one after the other, on the same mounted folder.
    expect(await readFile(checkpointFile(id, 'count'), 'utf8')).toBe('3\n');
    expect(await readFile(checkpointFile(id, 'attempts'), 'utf8')).toBe('1\n2\n3\n');
    // Each exited container is removed from the engine.
    await eventually('the job’s containers removed', async () =>
      expect(await mine({ 'fleet.job': id })).toEqual([]),
    );
  }, 120_000);

  it('a job that always fails ends failed with its exit code and last log lines in error_message', async () => {
    const id = await createJob({ command: ALWAYS_FAILS, schedule: null, max_retries: 1 });

    const job = await statusOf(id, 'failed', 60_000);
    expect(job).toMatchObject({
      retry_count: 1,
      error_message:
        'Container exited with code 3. Last log lines:\nepoch 1\nloss: nan\nValueError: loss is NaN',
      completed_at: expect.any(String),
    });
    const runs = await runsOf(id);
    expect(runs.runs.map((r: Record<string, unknown>) => [r.attempt, r.status, r.exit_code])).toEqual([
      [2, 'failed', 3],
      [1, 'failed', 3],
    ]);
    await eventually('the job’s containers removed', async () =>
      expect(await mine({ 'fleet.job': id })).toEqual([]),
    );
  }, 90_000);

  it('PUT and DELETE on a running job answer 409; once it ended they go through', async () => {
    const id = await createJob({ command: UNTIL_RELEASED, schedule: null, max_retries: 0 });
    await statusOf(id, 'running', 60_000);
    // Running on the engine, with the job's labels and the checkpoint folder mounted.
    const [c] = await eventually('the run container running', async () => {
      const found = await mine({ 'fleet.job': id });
      expect(found.map((x) => x.state)).toEqual(['running']);
      return found;
    });
    const info = await docker.getContainer(c!.id).inspect();
    expect(info.Config.Labels).toMatchObject({ [LABELS.kind]: 'run', [LABELS.node]: nodeName });
    expect(info.Config.Env).toEqual(
      expect.arrayContaining([`CHECKPOINT_DIR=/checkpoints`, `TRAINING_JOB_ID=${id}`]),
    );
    expect(info.Mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Source: join(checkpointRoot, id), Destination: '/checkpoints' }),
      ]),
    );

    const put = await api('PUT', `/jobs/${id}`, { max_retries: 5 });
    expect(put.status, put.text).toBe(409);
    expect(put.body).toEqual({
      detail: `Cannot update job ${id} while it is running`,
      error_type: 'JobRunningError',
    });
    const del = await api('DELETE', `/jobs/${id}`);
    expect(del.status, del.text).toBe(409);
    expect(del.body).toEqual({
      detail: `Cannot delete job ${id} while it is running`,
      error_type: 'JobRunningError',
    });
    // Nothing changed: same job, still running, container untouched.
    expect(await jobOf(id)).toMatchObject({ status: 'running', max_retries: 0 });
    expect((await docker.getContainer(c!.id).inspect()).State.Running).toBe(true);

    await writeFile(checkpointFile(id, 'release'), '');
    await statusOf(id, 'completed', 30_000);
    const updated = await api('PUT', `/jobs/${id}`, { max_retries: 5 });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body.max_retries).toBe(5);
    expect((await api('DELETE', `/jobs/${id}`)).status).toBe(204);
    expect((await api('GET', `/jobs/${id}`)).status).toBe(404);
    await eventually('the job’s containers removed', async () =>
      expect(await mine({ 'fleet.job': id })).toEqual([]),
    );
  }, 90_000);

  it('a run container removed behind the agent counts as a failed attempt; the retry runs', async () => {
    const id = await createJob({ command: UNTIL_RELEASED, schedule: null, max_retries: 1 });
    await statusOf(id, 'running', 60_000);
    const [c] = await eventually('the run container running', async () => {
      const found = await mine({ 'fleet.job': id });
      expect(found.map((x) => x.state)).toEqual(['running']);
      return found;
    });

    // Gone without an exit report; the repair sweep (every 5 minutes) is run now instead of waited for.
    await docker.getContainer(c!.id).remove({ force: true });
    await eventually(
      'the lost attempt failed and the retry running',
      async () => {
        await emit(rt.ctx, { type: 'jobs.repair' });
        const runs = await runsOf(id);
        expect(runs.runs.map((r: Record<string, unknown>) => [r.attempt, r.status])).toEqual([
          [2, 'running'],
          [1, 'failed'],
        ]);
        return runs;
      },
      60_000,
      1000,
    );
    const job = await jobOf(id);
    expect(job).toMatchObject({ status: 'running', retry_count: 1 });
    // Removed while running: the agent may see it die (137) before it is gone; either is one failed attempt.
    expect(job.error_message).toMatch(
      /^(Attempt failed: the run's container is gone from node |Container exited with code 137)/,
    );
    expect(job.error_message).not.toContain('[object Object]');
    await eventually('the retry’s container running', async () => {
      const found = await mine({ 'fleet.job': id });
      expect(found.map((x) => [x.state, x.id === c!.id])).toEqual([['running', false]]);
    });
    expect(await readFile(checkpointFile(id, 'started'), 'utf8')).toBe('1\n2\n');

    // Past the heartbeat grace (10 s here), a sweep leaves the retry alone: its heartbeats list it.
    await sleep(12_000);
    const report = await repairJobs(rt.ctx);
    expect(report).toMatchObject({ errors: 0, runsCancelled: [] });
    // So does the stray check the node sweep hands it to.
    await emit(rt.ctx, { type: 'training.strays', nodeIds: [agent.nodeId] });
    expect((await runsOf(id)).runs[0]).toMatchObject({ attempt: 2, status: 'running' });
    expect((await mine({ 'fleet.job': id })).map((x) => x.state)).toEqual(['running']);

    await writeFile(checkpointFile(id, 'release'), '');
    expect(await statusOf(id, 'completed', 30_000)).toMatchObject({ retry_count: 1, error_message: null });
    await eventually('the job’s containers removed', async () =>
      expect(await mine({ 'fleet.job': id })).toEqual([]),
    );
  }, 120_000);

  it('an agent SIGKILLed during a run: the attempt fails, the retry runs once it is back, alone', async () => {
    const id = await createJob({ command: UNTIL_RELEASED, schedule: null, max_retries: 1 });
    await statusOf(id, 'running', 60_000);
    const [old] = await eventually('the run container running', async () => {
      const found = await mine({ 'fleet.job': id });
      expect(found.map((x) => x.state)).toEqual(['running']);
      return found;
    });
    const nodeId = agent.nodeId;

    // Silent past NODE_OFFLINE_AFTER_SECONDS; the every-minute sweep is fired now instead of waited for.
    await agent.kill('SIGKILL');
    const killedAt = Date.now();
    await awaitNodeStatus(rt.url, [nodeId], 'offline', (OFFLINE_AFTER_S + 10) * 1000, 250);
    await emit(rt.ctx, { type: 'nodes.sweep' });
    const retrying = await statusOf(id, 'retrying', 20_000);
    expect(retrying).toMatchObject({
      retry_count: 1,
      error_message: `Attempt failed: node ${nodeId} went offline during the run`,
    });
    // No node for attempt 2 meanwhile; the old container trains on, out of reach.
    expect((await runsOf(id)).runs[0]).toMatchObject({ attempt: 2, status: 'pending', node_id: null });
    expect((await mine({ 'fleet.job': id })).map((x) => [x.id, x.state])).toEqual([[old!.id, 'running']]);

    // The killed agent's last long poll (up to 20 s) may still be open on the server and takes the
    // next command, the old container's removal included: restart once it has surely ended.
    await sleep(Math.max(0, killedAt + 21_000 - Date.now()));
    expect(await agent.start()).toBe(nodeId);

    // Back: attempt 2 runs on it, and the old container is removed.
    await eventually(
      'only the retry’s container on the engine',
      async () => {
        const found = await mine({ 'fleet.job': id });
        expect(
          found.map((x) => [x.state, x.id === old!.id]),
          agent.logTail(10),
        ).toEqual([['running', false]]);
      },
      40_000,
      500,
    );
    await expect(docker.getContainer(old!.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(
      (await runsOf(id)).runs.map((r: Record<string, unknown>) => [r.attempt, r.status, r.node_id]),
    ).toEqual([
      [2, 'running', nodeId],
      [1, 'failed', nodeId],
    ]);

    await writeFile(checkpointFile(id, 'release'), '');
    await statusOf(id, 'completed', 30_000);
    expect(await readFile(checkpointFile(id, 'started'), 'utf8')).toBe('1\n2\n');
    await eventually('the job’s containers removed', async () =>
      expect(await mine({ 'fleet.job': id })).toEqual([]),
    );
  }, 150_000);

  it('deleting a scheduled job removes its schedule from the scheduler', async () => {
    const id = await createJob({ command: ['true'], schedule: '0 2 * * *', timezone: 'Europe/Berlin' });
    expect(await rt.ctx.scheduler.get(`job-${id}`)).toMatchObject({
      name: `job-${id}`,
      expression: 'cron(0 2 * * ? *)',
      timezone: 'Europe/Berlin',
      payload: JSON.stringify({ type: 'job.fire', job_id: id }),
      enabled: true,
    });
    await rt.driver.refresh();
    expect(rt.driver.pending()[`job-${id}`]).toEqual(expect.any(String));

    const res = await api('DELETE', `/jobs/${id}`);
    expect(res.status, res.text).toBe(204);

    expect(await rt.ctx.scheduler.get(`job-${id}`)).toBeUndefined();
    expect((await rt.ctx.scheduler.list('job-')).map((s) => s.name)).not.toContain(`job-${id}`);
    await rt.driver.refresh();
    expect(rt.driver.pending()).not.toHaveProperty(`job-${id}`);
    const gone = await api('GET', `/jobs/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({ detail: `Job ${id} not found`, error_type: 'JobNotFoundError' });
  });

  it('an every-minute schedule fires on its own, its container runs on the engine, a firing during the run is skipped', async () => {
    const id = await createJob({ command: UNTIL_RELEASED, schedule: '* * * * *', max_retries: 0 });
    expect(await jobOf(id)).toMatchObject({ status: 'pending', schedule: '* * * * *', started_at: null });
    expect(await rt.ctx.scheduler.get(`job-${id}`)).toMatchObject({ expression: 'cron(* * * * ? *)' });

    // No clock is moved: the schedule driver fires at the next minute.
    const [c] = await eventually(
      'the first firing’s container running on the engine',
      async () => {
        const found = await mine({ 'fleet.job': id });
        expect(
          found.map((x) => x.state),
          agent.logTail(10),
        ).toEqual(['running']);
        return found;
      },
      80_000,
      500,
    );
    expect(c!.labels).toMatchObject({ [LABELS.kind]: 'run', [LABELS.node]: nodeName });
    expect(await jobOf(id)).toMatchObject({ status: 'running', started_at: expect.any(String) });
    const running = await runsOf(id);
    expect(running.runs).toEqual([
      expect.objectContaining({
        run_id: c!.labels[LABELS.instance],
        attempt: 1,
        status: 'running',
        node_id: agent.nodeId,
        // The firing's cron time: a whole minute.
        scheduled_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00$/),
      }),
    ]);
    expect(await readFile(checkpointFile(id, 'started'), 'utf8')).toBe('1\n');

    // Still running at the next minute: that firing is recorded as skipped, no second container.
    const skipped = await eventually(
      'the next firing skipped',
      async () => {
        const runs = (await runsOf(id)).runs as Record<string, unknown>[];
        const skip = runs.find((r) => r.status === 'skipped');
        expect(skip, JSON.stringify(runs)).toBeDefined();
        return skip!;
      },
      80_000,
      500,
    );
    expect(skipped).toMatchObject({
      attempt: null,
      node_id: null,
      scheduled_at: expect.stringMatching(/:00$/),
      error: expect.stringContaining('still active'),
    });
    expect(String(skipped.scheduled_at) > running.runs[0].scheduled_at).toBe(true);
    expect((await jobOf(id)).skipped_firings).toBeGreaterThanOrEqual(1);
    expect((await mine({ 'fleet.job': id })).map((x) => x.id)).toEqual([c!.id]);
    expect(await readFile(checkpointFile(id, 'started'), 'utf8')).toBe('1\n');

    await writeFile(checkpointFile(id, 'release'), '');
    await statusOf(id, 'completed', 30_000);
    const done = (await runsOf(id)).runs.find(
      (r: { run_id: string }) => r.run_id === c!.labels[LABELS.instance],
    );
    expect(done).toMatchObject({ status: 'succeeded', exit_code: 0 });

    // A later firing may be on its way (released, it ends at once): delete once it is not running.
    await eventually(
      'the job deleted',
      async () => expect((await api('DELETE', `/jobs/${id}`)).status).toBe(204),
      30_000,
      500,
    );
    expect(await rt.ctx.scheduler.get(`job-${id}`)).toBeUndefined();
    await eventually('the job’s containers removed', async () =>
      expect(await mine({ 'fleet.job': id })).toEqual([]),
    );
  }, 240_000);
});
