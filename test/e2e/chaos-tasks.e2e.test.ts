/**
 * Chaos for inference tasks and training jobs: two REAL agents on Podman running the fake model
 * server, each SIGKILLed at random moments and restarted at once, while tasks are submitted through
 * the cluster API of the embedded control plane and training jobs (busybox, a few seconds each,
 * retries allowed) through the jobs API.
 *
 * Afterwards:
 * - every task submitted has its record, in a terminal state (`completed`, or `failed` /
 *   `cancelled` with a reason): none lost, none left active;
 * - none ran twice: every task.run command was executed once by the agents' own account (each
 *   process logs `executing command` before it runs one), a task has no more task.run commands than
 *   attempts, and a completed task's result is that of its own request (its seed);
 * - every job ends `completed`, or `failed` with its error message; each of its attempts ran at
 *   most once (the run writes its attempt number in its checkpoint folder), never more than its
 *   retries allow.
 *
 * Seeded: CHAOS_SEED repeats a run's choices (the seed is printed). CHAOS_TASKS, CHAOS_TASK_KILLS
 * and CHAOS_JOBS set the volume (defaults: 40 tasks, 6 kills, 6 jobs).
 *
 * Then `npm start` SIGKILLed while a task runs (held on its model server by a gate) and started
 * again on its folder and port: the task, finished on the node while the control plane was down,
 * ends `completed` with its result; and when its agent is SIGKILLed too before it could deliver
 * the outcome, the task still ends (failed, saying so), once, and is not run again.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../protocol/messages.js';
import { killLocalProcess, startLocalProcess } from '../harness/local-process.js';
import { freePort } from '../harness/free-port.js';
import { agentEnv, agentProcesses, putModelServer, startAgents, tearDownFleet } from '../harness/fleet.js';
import { getTask, TERMINAL, type TaskItem } from '../../functions/cluster/tasks.js';
import { fleetKeys } from '../../functions/core/keys.js';
import type { CommandItem } from '../../functions/nodes/commands.js';
import { queryAll } from '../../functions/ports/store.js';
import { overrideTrainingSettings } from '../../functions/training/settings.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { ensureModelServerImage, MODEL_SERVER_PORT } from '../harness/model-server-image.js';
import { describeWith, engine as dockerClient, requireEngine, uniqueName } from '../harness/services.js';
import {
  AgentProcess,
  buildAgentBundle,
  call,
  engineContainers,
  eventually,
  removeNodeContainers,
  sleep,
  startControlPlane,
  type ControlPlane,
} from './harness.js';
import { seededRandom } from './chaos-random.js';

const TASKS = Number(process.env.CHAOS_TASKS ?? 40);
const JOBS = Number(process.env.CHAOS_JOBS ?? 6);
/** A training run: notes its attempt in the checkpoint folder, trains a moment, ends well. */
const TRAIN = ['sh', '-c', 'echo "$TRAINING_ATTEMPT" >> "$CHECKPOINT_DIR/attempts"; sleep 2; echo done'];
const KILLS = Number(process.env.CHAOS_TASK_KILLS ?? 6);
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

const engineStatus = requireEngine();
const runId = uniqueName('chaost');
const nodeNames = [`${runId}-a`, `${runId}-b`];
const MODEL = `${runId}-painter`;

describeWith(
  engineStatus,
  'chaos: agents SIGKILLed at random while inference tasks and training jobs run (embedded, Podman)',
  () => {
    let docker: Docker;
    let rt: ControlPlane;
    let stateRoot: string;
    let checkpointRoot: string;
    let agents: AgentProcess[] = [];
    const agentLines: string[] = [];
    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

    beforeAll(async () => {
      console.log(`chaos-tasks seed ${SEED} (CHAOS_SEED=${SEED} repeats its choices)`);
      docker = dockerClient();
      const image = await ensureModelServerImage(docker);
      await ensureBusyboxImage(docker);
      rt = await startControlPlane({
        env: {
          ...process.env,
          LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'ERROR',
          // A restart takes a few seconds on a loaded machine: the node must not count as lost meanwhile.
          NODE_OFFLINE_AFTER_SECONDS: '30',
          COMMAND_WAIT_MS: '500',
          AWS_ENDPOINT_URL: undefined,
        },
        moto: false,
      });
      stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
      checkpointRoot = join(stateRoot, 'checkpoints');
      await mkdir(checkpointRoot);
      // Short retry backoff; the checkpoint root is a folder the test reads.
      overrideTrainingSettings(rt.ctx, {
        retry: { baseSeconds: 1, maxSeconds: 2 },
        checkpointRoot,
        placementRetrySeconds: 1,
        webhooks: [],
      });
      const bundle = join(stateRoot, 'agent.mjs');
      await buildAgentBundle(bundle);
      agents = agentProcesses({
        url: rt.url,
        names: nodeNames,
        stateRoot,
        entry: [bundle],
        env: agentEnv({
          FLEET_LABELS: '',
          // The node's owner lets job containers mount the checkpoint root.
          FLEET_ALLOW_HOST_PATHS: checkpointRoot,
        }),
        onLine: (line) => agentLines.push(line),
      });
      await startAgents(agents);
      await putModelServer(rt.url, MODEL, image);
    }, 180_000);

    afterAll(async () => {
      await tearDownFleet({ agents, docker, nodeNames, controlPlane: rt, stateRoot });
    }, 60_000);

    it(`${KILLS} kills during ${TASKS} tasks and ${JOBS} jobs: each ends once, with a reason when not completed; none lost, none run twice`, async () => {
      const random = seededRandom(SEED);
      const nodeIds = agents.map((a) => a.nodeId);
      const submitted: { id: string; seed: number }[] = [];
      const serverErrors: string[] = [];
      let kills = 0;
      let submitting = true;

      const submitter = (async () => {
        for (let i = 0; i < TASKS; i++) {
          const seed = 1000 + i;
          const res = await api('POST', '/tasks', {
            task_type: 'image_generation',
            model_name: MODEL,
            parameters: {
              prompt: 'a lighthouse',
              width: 64,
              height: 64,
              steps: 2,
              seed,
              delay_ms: 200 + random.int(1500),
            },
          });
          if (res.status >= 500) serverErrors.push(res.text);
          expect(res.status, res.text).toBe(200);
          submitted.push({ id: res.body.task_id as string, seed });
          await sleep(random.int(600));
        }
        submitting = false;
      })();
      // Kills spread over the submissions, each agent restarted at once.
      const killer = (async () => {
        while (kills < KILLS) {
          await sleep(1500 + random.int(3000));
          const agent = random.pick(agents);
          kills++;
          await agent.kill('SIGKILL');
          await agent.start();
        }
      })();
      const jobs: string[] = [];
      const creator = (async () => {
        for (let i = 0; i < JOBS; i++) {
          await sleep(random.int(4000));
          const res = await api('POST', '/jobs', {
            name: `${runId}-job${i}`,
            image: BUSYBOX_IMAGE,
            command: TRAIN,
            schedule: null,
            max_retries: 2,
          });
          if (res.status >= 500) serverErrors.push(res.text);
          expect(res.status, res.text).toBe(201);
          jobs.push(res.body.job_id as string);
        }
      })();
      await Promise.all([submitter, killer, creator]);
      expect(submitting).toBe(false);

      const records = await eventually(
        'every task in a terminal state',
        async () => {
          const all = await Promise.all(submitted.map((s) => getTask(rt.ctx, s.id)));
          const open = all
            .map((t, i) => t ?? submitted[i]!.id)
            .filter((t) => typeof t === 'string' || !TERMINAL.includes(t.status));
          expect(
            open.map((t) =>
              typeof t === 'string' ? `${t}: no record` : `${t.taskId}: ${t.status} on ${t.nodeId}`,
            ),
          ).toEqual([]);
          return all as TaskItem[];
        },
        150_000,
        1000,
      );

      // Jobs: each ended, with its reason when failed; each attempt ran at most once, within its retries.
      const jobRecords = await eventually(
        'every job ended',
        async () => {
          const all = await Promise.all(jobs.map(async (id) => (await api('GET', `/jobs/${id}`)).body));
          expect(
            all
              .filter((j) => !['completed', 'failed'].includes(j.status))
              .map((j) => `${j.job_id}: ${j.status}`),
          ).toEqual([]);
          return all as {
            job_id: string;
            status: string;
            retry_count: number;
            error_message: string | null;
          }[];
        },
        120_000,
        1000,
      );
      for (const j of jobRecords) {
        if (j.status === 'failed')
          expect(j.error_message, `${j.job_id} failed without a reason`).toBeTruthy();
        const attempts = (await readFile(join(checkpointRoot, j.job_id, 'attempts'), 'utf8').catch(() => ''))
          .split('\n')
          .filter(Boolean);
        expect(new Set(attempts).size, `${j.job_id}: attempts ${attempts.join(',')}`).toBe(attempts.length);
        expect(attempts.length, `${j.job_id}: attempts ${attempts.join(',')}`).toBeLessThanOrEqual(3);
        if (j.status === 'completed') expect(attempts.length).toBe(j.retry_count + 1);
      }

      // Each terminal state has its reason; a completed task carries its own request's result.
      const bySeed = new Map(submitted.map((s) => [s.id, s.seed]));
      for (const t of records) {
        if (t.status === 'completed')
          expect(t.result, t.taskId).toMatchObject({ seed: bySeed.get(t.taskId) });
        else expect(t.error, `${t.taskId} ${t.status} without a reason`).toBeTruthy();
      }

      // Run once: one `executing command` per task.run over every agent process, no more runs than attempts.
      const commands = (
        await Promise.all(
          nodeIds.map((id) =>
            queryAll<CommandItem>(rt.ctx.store, fleetKeys.nodeCommandsPk(id), { index: 'gsi1' }),
          ),
        )
      ).flat();
      const runs = commands.filter((c) => c.type === 'task.run');
      const executions = new Map<string, number>();
      for (const line of agentLines) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { message?: string; commandId?: string };
        if (entry.message === 'executing command' && entry.commandId)
          executions.set(entry.commandId, (executions.get(entry.commandId) ?? 0) + 1);
      }
      expect(
        runs.filter((c) => (executions.get(c.commandId) ?? 0) > 1).map((c) => c.commandId),
        'task.run commands the agents executed twice',
      ).toEqual([]);
      const runsOf = new Map<string, number>();
      for (const c of runs) {
        const taskId = (c.command as { taskId: string }).taskId;
        runsOf.set(taskId, (runsOf.get(taskId) ?? 0) + 1);
      }
      expect(
        records
          .filter((t) => (runsOf.get(t.taskId) ?? 0) > t.attempts)
          .map((t) => `${t.taskId}: ${runsOf.get(t.taskId)} runs, ${t.attempts} attempts`),
        'tasks run more often than attempted',
      ).toEqual([]);
      expect(serverErrors).toEqual([]);

      const outcomes = new Map<string, number>();
      for (const t of records) {
        const key = t.status === 'completed' ? 'completed' : `${t.status}: ${t.error}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
      const jobOutcomes = new Map<string, number>();
      for (const j of jobRecords) {
        const key = `${j.status} after ${j.retry_count} retries${j.error_message ? `: ${j.error_message}` : ''}`;
        jobOutcomes.set(key, (jobOutcomes.get(key) ?? 0) + 1);
      }
      console.log(
        `chaos-tasks: ${kills} kills, ${records.length} tasks, ${runs.length} task.run commands; ${JSON.stringify(Object.fromEntries(outcomes))}; ${jobRecords.length} jobs: ${JSON.stringify(Object.fromEntries(jobOutcomes))}`,
      );
      expect(jobRecords).toHaveLength(JOBS);
      expect(records).toHaveLength(TASKS);
      expect(kills).toBe(KILLS);
    }, 600_000);
  },
);

describeWith(engineStatus, 'chaos: npm start SIGKILLed while a task runs (embedded, Podman)', () => {
  const cpRunId = uniqueName('chaostcp');
  const nodeName = `${cpRunId}-a`;
  const model = `${cpRunId}-painter`;
  let docker: Docker;
  let dataDir: string;
  let port: number;
  let child: ChildProcess | undefined;
  let url = '';
  let agent: AgentProcess;
  const lines: string[] = [];
  const api = (method: string, path: string, body?: unknown) => call(url, method, path, body);

  const start = async () => {
    ({ child, url } = await startLocalProcess(
      dataDir,
      { AWS_ENDPOINT_URL: '', API_AUTH: 'false', LOG_LEVEL: 'SILENT', NODE_OFFLINE_AFTER_SECONDS: '60' },
      port,
    ));
  };
  const killControlPlane = () => killLocalProcess(child!);
  /** The node's model server, by its published port. */
  const server = async () => {
    const [c] = (await engineContainers(docker, [nodeName], { [LABELS.kind]: 'model' })).filter(
      (x) => x.state === 'running',
    );
    expect(c, 'a running model server').toBeDefined();
    const info = await docker.getContainer(c!.id).inspect();
    return `http://127.0.0.1:${info.NetworkSettings.Ports[`${MODEL_SERVER_PORT}/tcp`]![0]!.HostPort}`;
  };
  /** Submits a task held on the server by `gate`, and waits until the server holds it. */
  const held = async (gate: string, seed: number) => {
    const res = await api('POST', '/tasks', {
      task_type: 'image_generation',
      model_name: model,
      parameters: { prompt: 'a lighthouse', width: 64, height: 64, steps: 2, seed, gate },
    });
    expect(res.status, res.text).toBe(200);
    await eventually(
      `task held on the server (${gate})`,
      async () => expect((await call(await server(), 'GET', '/state')).body.held).toContain(gate),
      90_000,
      250,
    );
    return res.body.task_id as string;
  };
  const completedOnNode = (taskId: string) =>
    eventually(
      `${taskId} done on the node`,
      () => expect(lines.some((l) => l.includes('"task completed"') && l.includes(taskId))).toBe(true),
      30_000,
      100,
    );
  const taskView = async (taskId: string) => {
    const res = await api('GET', `/tasks/${taskId}`);
    expect(res.status, res.text).toBe(200);
    return res.body as { status: string; error?: string | null; result?: { seed?: number } | null };
  };

  beforeAll(async () => {
    docker = dockerClient();
    const image = await ensureModelServerImage(docker);
    dataDir = await mkdtemp(join(tmpdir(), `${cpRunId}-`));
    port = await freePort();
    await start();
    const bundle = join(dataDir, 'agent.mjs');
    await buildAgentBundle(bundle);
    agent = new AgentProcess({
      url,
      name: nodeName,
      stateDir: join(dataDir, 'agent'),
      heartbeatSeconds: 1,
      entry: [bundle],
      env: agentEnv({ FLEET_LABELS: '' }),
      onLine: (line) => lines.push(line),
    });
    await agent.start();
    await putModelServer(url, model, image);
  }, 180_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    if (docker) await removeNodeContainers(docker, [nodeName]);
    if (child) await killControlPlane();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('the task finishes while the control plane is down: completed with its result once it is back', async () => {
    const gate = `${cpRunId}-down`;
    const taskId = await held(gate, 7);
    await killControlPlane();
    expect((await call(await server(), 'POST', '/release', { gate })).body.wasHeld).toBe(true);
    await completedOnNode(taskId);
    await start();
    const done = await eventually(
      'the task completed',
      async () => {
        const t = await taskView(taskId);
        expect(t.status).toBe('completed');
        return t;
      },
      60_000,
      250,
    );
    expect(done.result).toMatchObject({ seed: 7 });
  }, 180_000);

  it('its agent is SIGKILLed too before it delivered the outcome: the task ends once, saying so, and is not run again', async () => {
    const gate = `${cpRunId}-both`;
    const taskId = await held(gate, 8);
    await killControlPlane();
    expect((await call(await server(), 'POST', '/release', { gate })).body.wasHeld).toBe(true);
    await completedOnNode(taskId);
    await agent.kill('SIGKILL');
    await start();
    await agent.start();
    const done = await eventually(
      'the task ended',
      async () => {
        const t = await taskView(taskId);
        expect(TERMINAL).toContain(t.status);
        return t;
      },
      60_000,
      250,
    );
    expect(done.status, JSON.stringify(done)).toBe('failed');
    expect(done.error).toMatch(/restarted before/);
    // Not run again: the server saw its gate once, and no second task.run went out.
    const runs = lines.filter((l) => l.includes('"executing command"') && l.includes('"task.run"'));
    expect(runs).toHaveLength(2);
  }, 180_000);
});
