/**
 * Checkpoints that follow the job, end to end: the control plane embedded (the artifacts store is
 * its folder, chunks travel through the agent routes) and on moto (S3: the agents get presigned
 * URLs; FLEET_E2E_RUNTIME=stack runs the synthesized stack), TWO real agents as child processes and
 * Podman. Each agent keeps checkpoints in a folder of its own (FLEET_CHECKPOINT_ROOT), so node B
 * can only see what attempt 1 wrote on node A through the store.
 *
 * Attempt 1 runs on A, writes steps 1..5 and hangs; once the stored checkpoint shows step 5, A's
 * agent is SIGKILLed and its container killed. The node goes offline, the attempt fails, attempt 2
 * is placed on B, whose agent restores the checkpoint before the container starts: the run reads
 * step 5, goes on to step 8 and completes. Containers are found by this suite's node names only.
 */
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../functions/core/events.js';
import { agentEnv, awaitNodeStatus } from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import {
  bothServices,
  describeWith,
  engine as dockerClient,
  emulatorDeployment,
  requireEngine,
  requireMoto,
  uniqueName,
  type ServiceStatus,
} from '../harness/services.js';
import {
  AgentProcess,
  call,
  E2E_RUNTIME,
  engineContainers,
  eventually,
  removeNodeContainers,
  startControlPlane,
  type ControlPlane,
} from './harness.js';

const OFFLINE_AFTER_S = 6;

/** Resumes from `$CHECKPOINT_DIR/step`; attempt 1 stops moving at step 5, later ones go on to 8. */
const TRAIN = [
  'sh',
  '-c',
  [
    's=$(cat "$CHECKPOINT_DIR/step" 2>/dev/null || echo 0)',
    'echo "attempt $TRAINING_ATTEMPT starts at step $s"',
    'echo "$s" > "$CHECKPOINT_DIR/resumed-a$TRAINING_ATTEMPT"',
    'while [ "$s" -lt 8 ]; do s=$((s + 1)); echo "$s" > "$CHECKPOINT_DIR/step"; echo "step $s"',
    'if [ "$s" -eq 5 ] && [ "$TRAINING_ATTEMPT" = 1 ]; then echo 5 > "$CHECKPOINT_DIR/reached-5"; while true; do sleep 1; done; fi',
    'done',
    'echo "training done"',
  ].join('; '),
];

const engineStatus = requireEngine();
const motoStatus = requireMoto();
const modes: { name: string; moto: boolean; status: ServiceStatus }[] = [
  { name: 'embedded, chunks through the agent routes', moto: false, status: engineStatus },
  {
    name: `${E2E_RUNTIME === 'stack' ? 'the synthesized stack' : 'control plane'} on moto, presigned S3 URLs`,
    moto: true,
    status: bothServices(engineStatus, motoStatus),
  },
];

describe.each(modes)('checkpoints follow the job: $name', (mode) => {
  describeWith(mode.status, 'two real agents, Podman', () => {
    const runId = uniqueName(mode.moto ? 'e2e-ckpt-s3' : 'e2e-ckpt');
    const names = [`${runId}-a`, `${runId}-b`];
    let docker: Docker;
    let rt: ControlPlane;
    let root: string;
    const agents: AgentProcess[] = [];
    const dirOf = (node: 'a' | 'b', jobId: string) => join(root, `ckpt-${node}`, jobId);

    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
    const agentOf = (node: 'a' | 'b') =>
      new AgentProcess({
        url: rt.url,
        name: node === 'a' ? names[0]! : names[1]!,
        stateDir: join(root, `agent-${node}`),
        heartbeatSeconds: 1,
        env: agentEnv({
          // Each node its own folder, allowed by its own policy.
          FLEET_CHECKPOINT_ROOT: join(root, `ckpt-${node}`),
          FLEET_ALLOW_HOST_PATHS: join(root, `ckpt-${node}`),
        }),
      });
    const logs = () => agents.map((a) => `--- ${a.name}\n${a.logTail(15)}`).join('\n');
    const online = (nodeId: string, status: string) =>
      awaitNodeStatus(rt.url, [nodeId], status, (OFFLINE_AFTER_S + 15) * 1000, 250);

    beforeAll(async () => {
      docker = dockerClient();
      await ensureBusyboxImage(docker);
      root = await mkdtemp(join(tmpdir(), `${runId}-`));
      await Promise.all(['ckpt-a', 'ckpt-b', 'control-plane-root'].map((d) => mkdir(join(root, d))));
      const env: Record<string, string | undefined> = {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_S),
        TRAINING_RETRY_BASE_SECONDS: '1',
        TRAINING_RETRY_MAX_SECONDS: '2',
        TRAINING_PLACEMENT_RETRY_SECONDS: '1',
        TRAINING_CHECKPOINT_SYNC_SECONDS: '1',
        TRAINING_WEBHOOK_URLS: '',
        // The control plane's path is neither node's: each agent puts the folder under its own root.
        TRAINING_CHECKPOINT_ROOT: join(root, 'control-plane-root'),
        AWS_ENDPOINT_URL: undefined,
        ...(mode.moto ? emulatorDeployment(runId) : {}),
      };
      rt = await startControlPlane({ env, moto: mode.moto });
      expect(rt.ctx.mode).toBe(mode.moto ? 'emulator' : 'embedded');
      agents.push(agentOf('a'));
      await agents[0]!.start();
      await online(agents[0]!.nodeId, 'online');
    }, 120_000);

    afterAll(async () => {
      for (const a of agents) await a.kill('SIGKILL');
      if (docker) await removeNodeContainers(docker, names);
      await rt?.stop();
      if (root) await rm(root, { recursive: true, force: true });
      if (docker) expect(await engineContainers(docker, names)).toEqual([]);
    }, 60_000);

    it('attempt 1 on node A writes step 5 and dies with A; attempt 2 on node B restores step 5 and finishes', async () => {
      const [a] = agents as [AgentProcess];
      const created = await api('POST', '/jobs', {
        name: uniqueName('job'),
        image: BUSYBOX_IMAGE,
        command: TRAIN,
        schedule: null,
        max_retries: 2,
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.job_id as string;

      // Stored with step 5: the sync (every second) has taken the folder after `reached-5` was written.
      const stored = await eventually(
        'the stored checkpoint at step 5',
        async () => {
          const res = await api('GET', `/jobs/${id}/checkpoint`);
          expect(res.status).toBe(200);
          expect(
            res.body.files.map((f: { name: string }) => f.name),
            logs(),
          ).toContain('reached-5');
          return res.body;
        },
        60_000,
        250,
      );
      expect(stored.files.map((f: Record<string, unknown>) => [f.name, f.attempt])).toEqual([
        ['reached-5', 1],
        ['resumed-a1', 1],
        ['step', 1],
      ]);
      expect(await readFile(join(dirOf('a', id), 'step'), 'utf8')).toBe('5\n');

      // Node A dies: its agent and its container.
      await a.kill('SIGKILL');
      for (const c of await engineContainers(docker, [a.name], { 'fleet.job': id }))
        await docker.getContainer(c.id).remove({ force: true });
      agents.push(agentOf('b'));
      const b = agents[1]!;
      await b.start();
      await online(a.nodeId, 'offline');
      await emit(rt.ctx, { type: 'nodes.sweep' });

      const job = await eventually(
        'the job completed',
        async () => {
          const res = await api('GET', `/jobs/${id}`);
          expect(res.body.status, `${JSON.stringify(res.body)}\n${logs()}`).toBe('completed');
          return res.body;
        },
        90_000,
        250,
      );
      expect(job).toMatchObject({ retry_count: 1, error_message: null });
      const runs = (await api('GET', `/jobs/${id}/runs`)).body;
      expect(runs.runs.map((r: Record<string, unknown>) => [r.attempt, r.status, r.node_id])).toEqual([
        [2, 'succeeded', b.nodeId],
        [1, 'failed', a.nodeId],
      ]);

      // Attempt 2 started from step 5, in B's own folder; A's folder never saw it.
      expect(await readFile(join(dirOf('b', id), 'resumed-a2'), 'utf8')).toBe('5\n');
      expect(await readFile(join(dirOf('b', id), 'step'), 'utf8')).toBe('8\n');
      expect((await readdir(dirOf('a', id))).sort()).toEqual(['reached-5', 'resumed-a1', 'step']);
      const run2 = runs.runs[0].run_id as string;
      const out = await api('GET', `/jobs/${id}/runs/${run2}/logs`);
      expect(out.status).toBe(200);
      expect(JSON.stringify(out.body)).toContain('attempt 2 starts at step 5');

      // The upload after the exit is in the store: step 8 and attempt 2's own file, by attempt 2.
      const final = (await api('GET', `/jobs/${id}/checkpoint`)).body;
      expect(final.files.map((f: Record<string, unknown>) => [f.name, f.attempt])).toEqual([
        ['reached-5', 1],
        ['resumed-a1', 1],
        ['resumed-a2', 2],
        ['step', 2],
      ]);
      const restored = b.lines.find((l) => l.includes('"checkpoint restored"'));
      expect(restored, logs()).toBeDefined();
      // Fetched with presigned S3 URLs on moto, through the agent routes when embedded.
      expect(JSON.parse(restored!)).toMatchObject({ jobId: id, files: 3, presigned: mode.moto });

      // Deleting the job takes its checkpoint along.
      expect((await api('DELETE', `/jobs/${id}`)).status).toBe(204);
      expect(await rt.ctx.blobs.list(`checkpoints/${id}/`)).toEqual([]);
    }, 240_000);
  });
});
