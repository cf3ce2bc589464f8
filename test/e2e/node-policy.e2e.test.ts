/**
 * The nodes' own policies, known to the control plane: two REAL agents (child processes) on
 * Podman, one with the default policy ("strict") and one whose owner allows a shared folder and
 * the checkpoint root ("open"), behind the embedded runtime. Each agent reports its policy at
 * registration; the node view shows it; a service or job that no node that could take it allows
 * is refused at the API (422 START_REFUSED, nothing stored, no command queued), and placement puts
 * what one node allows on that node only.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nodeCommands } from '../../functions/nodes/commands.js';
import { LABELS } from '../../protocol/messages.js';
import { agentEnv } from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { describeWith, engine as dockerClient, requireEngine, uniqueName } from '../harness/services.js';
import {
  AgentProcess,
  call,
  engineContainers,
  eventually,
  removeNodeContainers,
  RUN_UNTIL_TERM,
  startControlPlane,
  type ControlPlane,
} from './harness.js';

const engineStatus = requireEngine();

describeWith(
  engineStatus,
  'node policy known to the control plane: embedded runtime, two real agents',
  () => {
    const runId = uniqueName('e2e-policy');
    const names = { strict: `${runId}-strict`, open: `${runId}-open` };
    let docker: Docker;
    let rt: ControlPlane;
    let root: string;
    let shared: string;
    let checkpointRoot: string;
    /** Busybox with a command that runs until stopped (the Swarm API sends none of its own). */
    const SLEEPER = `localhost/${runId}:sleeper`;
    const agents: Record<keyof typeof names, AgentProcess | undefined> = {
      strict: undefined,
      open: undefined,
    };

    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
    const mine = (labels: Record<string, string> = {}) =>
      engineContainers(docker, Object.values(names), labels);
    const nodeId = (which: keyof typeof names) => agents[which]!.nodeId;
    /** Every command record of both nodes: a refusal at the API must add none. */
    const commandCount = async () =>
      (
        await Promise.all(
          Object.keys(names).map((w) => nodeCommands(rt.ctx, nodeId(w as keyof typeof names))),
        )
      ).flat().length;

    beforeAll(async () => {
      docker = dockerClient();
      await ensureBusyboxImage(docker);
      const base = await docker.createContainer({ Image: BUSYBOX_IMAGE, Cmd: ['true'] });
      await base.commit({
        repo: `localhost/${runId}`,
        tag: 'sleeper',
        changes: `CMD ${JSON.stringify(RUN_UNTIL_TERM)}`,
      });
      await base.remove();
      root = await mkdtemp(join(tmpdir(), `${runId}-`));
      shared = join(root, 'shared');
      checkpointRoot = join(root, 'checkpoints');
      await mkdir(shared);
      await mkdir(checkpointRoot);
      rt = await startControlPlane({
        moto: false,
        env: {
          ...process.env,
          LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
          AWS_ENDPOINT_URL: undefined,
          TRAINING_CHECKPOINT_ROOT: checkpointRoot,
        },
      });
      agents.strict = new AgentProcess({
        url: rt.url,
        name: names.strict,
        stateDir: join(root, 'strict'),
        heartbeatSeconds: 1,
        env: agentEnv({ FLEET_ALLOW_HOST_PATHS: '' }),
      });
      agents.open = new AgentProcess({
        url: rt.url,
        name: names.open,
        stateDir: join(root, 'open'),
        heartbeatSeconds: 1,
        env: agentEnv({ FLEET_ALLOW_HOST_PATHS: `${shared},${checkpointRoot}`, FLEET_ALLOW_EXEC: 'true' }),
      });
      await Promise.all([agents.strict.start(), agents.open.start()]);
    }, 120_000);

    afterAll(async () => {
      await Promise.all(Object.values(agents).map((a) => a?.kill('SIGKILL')));
      if (docker) await removeNodeContainers(docker, Object.values(names));
      await rt?.stop();
      if (root) await rm(root, { recursive: true, force: true });
      if (docker)
        await docker
          .getImage(SLEEPER)
          .remove()
          .catch(() => undefined);
    }, 60_000);

    it('each node shows the policy its agent reported', async () => {
      const res = await api('GET', '/api/nodes/');
      expect(res.status, res.text).toBe(200);
      const view = (which: keyof typeof names) =>
        (res.body.nodes as { id: string; policy: unknown }[]).find((n) => n.id === nodeId(which));
      const off = {
        allow_engine_socket: false,
        allow_privileged: false,
        allow_host_network: false,
        allow_host_pid: false,
        allow_capabilities: [],
      };
      expect(view('strict')?.policy).toEqual({
        allow_host_paths: ['/var/lib/fleet/checkpoints'],
        ...off,
        allow_exec: false,
      });
      expect(view('open')?.policy).toEqual({
        allow_host_paths: [shared, checkpointRoot],
        ...off,
        allow_exec: true,
      });
    });

    it('host commands: refused at the API where the node said no (403, nothing queued), run where it allows them', async () => {
      const before = await commandCount();
      const refused = await api('POST', '/api/ssh/exec-node', { node_id: names.strict, command: 'id' });
      expect(refused.status, refused.text).toBe(403);
      expect(refused.text).toContain(
        `Remote execution is disabled on node ${names.strict}: restart its agent with --allow-exec`,
      );
      expect(await commandCount()).toBe(before);
      const ran = await api('POST', '/api/ssh/exec-node', {
        node_id: names.open,
        command: 'echo allowed here',
      });
      expect(ran.status, ran.text).toBe(200);
      expect(ran.body).toMatchObject({ stdout: 'allowed here\n', exit_status: 0 });
    }, 60_000);

    it('a service mounting what no node allows is refused at the API: 422, nothing stored, nothing queued', async () => {
      const before = await commandCount();
      for (const [source, rule] of [
        ['/', /\(host-paths\).*root folder \/ is never allowed/],
        ['/etc', /\(host-paths\): host path \/etc is outside the folders this node allows/],
        ['/var/run/docker.sock', /\(engine-socket\).*--allow-engine-socket/],
      ] as const) {
        const name = uniqueName('policy');
        const res = await api('POST', '/api/swarm/services', {
          name,
          image: SLEEPER,
          replicas: 1,
          mounts: [{ source, target: '/host' }],
        });
        expect(res.status, res.text).toBe(422);
        // The route's error shape (FastAPI detail), each node named with its refusal.
        expect(Object.keys(res.body)).toEqual(['detail']);
        expect(res.body.detail).toMatch(rule);
        expect(res.body.detail).toContain(names.strict);
        expect(res.body.detail).toContain(names.open);
        const services = (await api('GET', '/api/swarm/services')).body as { name: string }[];
        expect(services.filter((s) => s.name === name)).toEqual([]);
      }
      expect(await commandCount()).toBe(before);
      expect(await mine({ [LABELS.image]: SLEEPER })).toEqual([]);
    });

    it('a service mounting a folder one node allows runs only on that node', async () => {
      const name = uniqueName('shared');
      const strictBefore = (await nodeCommands(rt.ctx, nodeId('strict'))).length;
      const res = await api('POST', '/api/swarm/services', {
        name,
        image: SLEEPER,
        replicas: 2,
        mounts: [{ source: shared, target: '/shared', read_only: true }],
      });
      expect(res.status, `${res.text}\n${agents.open!.logTail(20)}`).toBe(201);
      expect(res.body).toMatchObject({ name, replicas: 2, running: 2 });
      const containers = await mine({ [LABELS.image]: SLEEPER });
      expect(containers).toHaveLength(2);
      expect(containers.map((c) => c.labels[LABELS.node])).toEqual([names.open, names.open]);
      // Nothing was ever sent to the node that would refuse it.
      expect(await nodeCommands(rt.ctx, nodeId('strict'))).toHaveLength(strictBefore);

      const del = await api('DELETE', `/api/swarm/services/${name}`);
      expect(del.status, del.text).toBe(200);
      await eventually('the copies removed', async () =>
        expect(await mine({ [LABELS.image]: SLEEPER })).toEqual([]),
      );
    });

    it('a job is refused while only nodes that refuse its checkpoint folder can run it, and placed where it is allowed', async () => {
      const cordon = await api('POST', `/api/nodes/${nodeId('open')}/cordon`);
      expect(cordon.status, cordon.text).toBe(200);
      const before = await commandCount();
      const name = uniqueName('job');
      const refused = await api('POST', '/jobs', {
        name,
        image: BUSYBOX_IMAGE,
        command: ['true'],
        schedule: null,
      });
      expect(refused.status, refused.text).toBe(422);
      expect(refused.body).toMatchObject({ error_type: 'StartRefusedError' });
      expect(refused.body.detail).toMatch(
        new RegExp(
          `${names.strict}: refused by this node's policy \\(host-paths\\): host path ${checkpointRoot}/`,
        ),
      );
      const jobs = (await api('GET', '/jobs')).body as { jobs: { name: string }[] };
      expect(jobs.jobs.filter((j) => j.name === name)).toEqual([]);
      expect(await commandCount()).toBe(before);

      const uncordon = await api('POST', `/api/nodes/${nodeId('open')}/uncordon`);
      expect(uncordon.status, uncordon.text).toBe(200);
      const created = await api('POST', '/jobs', {
        name,
        image: BUSYBOX_IMAGE,
        command: ['true'],
        schedule: null,
      });
      expect(created.status, created.text).toBe(201);
      const jobId = created.body.job_id as string;
      const job = await eventually(
        'the job completed',
        async () => {
          const j = await api('GET', `/jobs/${jobId}`);
          expect(j.body.status, `${j.text}\n${agents.open!.logTail(20)}`).toBe('completed');
          return j.body;
        },
        60_000,
      );
      expect(job).toMatchObject({ status: 'completed', retry_count: 0 });
      const runs = await api('GET', `/jobs/${jobId}/runs`);
      expect(runs.body.runs.map((r: { node_id: string; status: string }) => [r.node_id, r.status])).toEqual([
        [nodeId('open'), 'succeeded'],
      ]);
    }, 90_000);
  },
);
