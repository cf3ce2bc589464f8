/**
 * A node without a container engine: the local runtime (embedded control plane in this process)
 * and ONE real agent as a child process with `--driver process`. Training runs that give a command
 * run on it as process groups, with CHECKPOINT_DIR the host folder the control plane names; a job
 * without a command waits with a reason that says why. Needs no engine.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overrideTrainingSettings } from '../../functions/training/settings.js';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { agentEnv } from '../harness/fleet.js';
import { uniqueName } from '../harness/services.js';
import { AgentProcess, call, eventually } from './harness.js';

const FAIL_ONCE = [
  'sh',
  '-c',
  [
    'n=$(cat "$CHECKPOINT_DIR/count" 2>/dev/null || echo 0)',
    'n=$((n + 1))',
    'echo "$n" > "$CHECKPOINT_DIR/count"',
    'echo "attempt $TRAINING_ATTEMPT of $TRAINING_JOB_ID"',
    'if [ "$n" -lt 2 ]; then echo "RuntimeError: boom" >&2; exit 2; fi',
    'echo done',
  ].join('; '),
];

describe('a process node (agent --driver process) in the local runtime', () => {
  const runId = uniqueName('e2e-proc');
  let rt: Runtime;
  let root: string;
  let checkpointRoot: string;
  let agent: AgentProcess;
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `${runId}-`));
    checkpointRoot = join(root, 'checkpoints');
    await mkdir(checkpointRoot);
    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: '6',
        AWS_ENDPOINT_URL: undefined,
      },
    });
    overrideTrainingSettings(rt.ctx, {
      retry: { baseSeconds: 1, maxSeconds: 1 },
      checkpointRoot,
      placementRetrySeconds: 1,
      webhooks: [],
    });
    agent = new AgentProcess({
      url: rt.url,
      name: `${runId}-p`,
      stateDir: join(root, 'agent'),
      heartbeatSeconds: 1,
      env: agentEnv({
        FLEET_DRIVER: 'process',
        // No engine at all: a DOCKER_HOST must not matter.
        DOCKER_HOST: 'unix:///nonexistent.sock',
        FLEET_ALLOW_HOST_PATHS: checkpointRoot,
      }),
    });
    await agent.start();
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await rt?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  }, 60_000);

  it('registers as a process node', async () => {
    const nodes = (await api('GET', '/api/nodes/')).body.nodes as Record<string, unknown>[];
    expect(nodes.find((n) => n.id === agent.nodeId)).toMatchObject({
      name: `${runId}-p`,
      status: 'online',
      driver: 'process',
    });
  });

  it('runs a job’s command as a process: the retry sees the checkpoint folder, logs and exit codes reach the runs', async () => {
    const created = await api('POST', '/jobs', {
      name: uniqueName('pjob'),
      image: 'unused:latest',
      command: FAIL_ONCE,
      schedule: null,
      max_retries: 2,
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.job_id as string;
    const job = await eventually(
      'the job completed',
      async () => {
        const j = (await api('GET', `/jobs/${id}`)).body;
        expect(j.status, `${JSON.stringify(j)}\n${agent.logTail(10)}`).toBe('completed');
        return j;
      },
      60_000,
      250,
    );
    expect(job).toMatchObject({ retry_count: 1, error_message: null });
    const runs = (await api('GET', `/jobs/${id}/runs`)).body;
    expect(
      runs.runs.map((r: Record<string, unknown>) => [r.attempt, r.status, r.exit_code, r.node_id]),
    ).toEqual([
      [2, 'succeeded', 0, agent.nodeId],
      [1, 'failed', 2, agent.nodeId],
    ]);
    expect(runs.runs[1].log_tail).toContain('RuntimeError: boom');
    expect(await readFile(join(checkpointRoot, id, 'count'), 'utf8')).toBe('2\n');
  }, 90_000);

  it('a container start without a command is refused with the reason; one with a command runs as a process', async () => {
    const image = await api('POST', '/start/container', { resources: { image: 'web:latest' } });
    expect(image.status, image.text).toBe(409);
    expect(image.text).toContain('process nodes (no container engine) run only services that give a command');

    const started = await api('POST', '/start/container', {
      resources: { image: 'svc:latest', memory_limit: '256m' },
      command: ['sh', '-c', 'echo serving; while true; do sleep 1; done'],
    });
    expect(started.status, started.text).toBe(200);
    expect(started.body).toMatchObject({ ok: true, action: 'created', image: 'svc:latest' });
    const logs = await eventually('the process’s log through the container log route', async () => {
      const res = await api('GET', `/api/swarm/containers/${started.body.container_id}/logs?tail=5`);
      expect(res.status, res.text).toBe(200);
      expect(JSON.stringify(res.body)).toContain('serving');
      return res.body;
    });
    expect(logs).toBeDefined();
    const stopped = await api('POST', '/containers/svc:latest/stop', {
      instanceId: started.body.container_id,
    });
    expect(stopped.status, stopped.text).toBe(200);
    expect(stopped.body).toEqual({ stopped: true });
    const listed = (await api('GET', '/containers')).body.containers as Record<string, unknown>[];
    expect(listed.find((c) => c.id === started.body.container_id)).toMatchObject({
      node_id: agent.nodeId,
      // As with an engine: a stopped copy's process shows its state, exited.
      status: 'exited',
    });
  }, 60_000);
});
