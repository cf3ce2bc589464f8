/**
 * The orchestrator API end to end: the local runtime (control plane in this process), two REAL
 * agents as child processes (agent/main.ts, distinct node names and state dirs, so they can be
 * SIGKILLed) and Podman. Run twice: embedded control plane (HTTP command channel), and control
 * plane on moto (each node gets an SQS command queue).
 *
 * Every check is made against the engine (dockerode, by the agent's labels) as well as the API.
 * Containers are found by label fleet.node = one of this suite's node names, so other suites
 * sharing the engine are never counted nor touched; afterAll removes every one of them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emit } from '../../functions/core/events.js';
import { LABELS } from '../../protocol/messages.js';
import {
  agentEnv,
  agentLogTails,
  agentProcesses,
  awaitNodeStatus,
  expectAgentChannel,
  startAgents,
  stopAgents,
} from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import {
  bothServices,
  describeWith,
  dockerOptions,
  emulatorDeployment,
  engine as dockerClient,
  requireEngine,
  requireMoto,
  uniqueName,
  type ServiceStatus,
} from '../harness/services.js';
import {
  AgentProcess,
  call,
  EngineProxy,
  engineContainers,
  eventually,
  MIB,
  removeNodeContainers,
  RUN_UNTIL_TERM,
  sleep,
  tagImage,
  untagImage,
  type EngineContainer,
  type StartVerdict,
  startControlPlane,
  E2E_RUNTIME,
  type ControlPlane,
} from './harness.js';

/** A node is offline after this many seconds without a heartbeat; agents beat every second. */
const OFFLINE_AFTER_S = 6;
/** How long a changing call waits for the agents before answering 202. */
const COMMAND_WAIT_MS = 8_000;

const engineStatus = requireEngine();
const motoStatus = requireMoto();

/** One tag of the busybox test image per scenario (each its own image, i.e. service, in the API); unique to this run. */
const TAG_REPO = `localhost/${uniqueName('fleet-e2e')}`;
const IMAGES = {
  main: BUSYBOX_IMAGE,
  spread: `${TAG_REPO}:spread`,
  crash: `${TAG_REPO}:crash`,
  killFailover: `${TAG_REPO}:kill-failover`,
  killRestart: `${TAG_REPO}:kill-restart`,
  refused: `${TAG_REPO}:refused`,
};

interface Mode {
  name: string;
  moto: boolean;
  status: ServiceStatus;
}

const modes: Mode[] = [
  { name: 'embedded control plane, HTTP command channel', moto: false, status: engineStatus },
  {
    name: `${E2E_RUNTIME === 'stack' ? 'the synthesized stack (start:stack)' : 'control plane'} on moto, SQS command queues`,
    moto: true,
    status: bothServices(engineStatus, motoStatus),
  },
];

let docker: Docker;
beforeAll(async () => {
  if (!engineStatus.available) return;
  docker = dockerClient();
  await ensureBusyboxImage(docker);
  for (const ref of Object.values(IMAGES))
    if (ref !== BUSYBOX_IMAGE) await tagImage(docker, BUSYBOX_IMAGE, ref);
}, 120_000);
afterAll(async () => {
  if (!docker) return;
  for (const ref of Object.values(IMAGES)) if (ref !== BUSYBOX_IMAGE) await untagImage(docker, ref);
});

describe.each(modes)('orchestrator end to end: $name', (mode) => {
  describeWith(mode.status, 'local runtime, two real agents, Podman', () => {
    const runId = uniqueName(mode.moto ? 'e2e-sqs' : 'e2e-emb');
    let rt: ControlPlane;
    let stateRoot: string;
    let agents: AgentProcess[] = [];
    let proxy: EngineProxy;
    const nodeNames = [`${runId}-a`, `${runId}-b`];

    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
    const mine = (labels: Record<string, string> = {}) => engineContainers(docker, nodeNames, labels);
    const agentNamed = (name: string | undefined) => {
      const a = agents.find((x) => x.name === name);
      if (!a) throw new Error(`no agent of this suite is named ${name}`);
      return a;
    };
    const agentLogs = () => agentLogTails(agents, 25);
    /** The one container of an instance on the engine, inspected. */
    const containerOf = async (instanceId: string) => {
      const found = await mine({ [LABELS.instance]: instanceId });
      expect(found, `containers of instance ${instanceId}`).toHaveLength(1);
      return docker.getContainer(found[0]!.id).inspect();
    };
    const instancesOf = async (image: string) => {
      const res = await api('GET', `/containers/${image}/instances`);
      expect(res.status, res.text).toBe(200);
      return res.body.instances as { id: string; status: string; node_id: string; endpoint: string | null }[];
    };

    beforeAll(async () => {
      const env: Record<string, string | undefined> = {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_S),
        COMMAND_WAIT_MS: String(COMMAND_WAIT_MS),
        // A dead copy's replacement waits out its restart backoff (10 s by default, doubling).
        RESTART_BACKOFF_SECONDS: '1',
        AWS_ENDPOINT_URL: undefined,
      };
      if (mode.moto) {
        Object.assign(env, emulatorDeployment(runId));
      }
      rt = await startControlPlane({ env, moto: mode.moto });
      expect(rt.ctx.mode).toBe(mode.moto ? 'emulator' : 'embedded');
      stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
      // The agents reach the engine through a pass-through proxy: the SIGKILL tests stop one mid-start with it.
      const engineSocket = dockerOptions().socketPath;
      if (!engineSocket)
        throw new Error(
          `DOCKER_HOST=${process.env.DOCKER_HOST}: these tests need the engine on a unix socket`,
        );
      proxy = new EngineProxy(join(stateRoot, 'engine.sock'), engineSocket);
      await proxy.listen();
      agents = agentProcesses({
        url: rt.url,
        names: nodeNames,
        stateRoot,
        env: agentEnv({ DOCKER_HOST: proxy.dockerHost }),
      });
      await startAgents(agents);
      // Both registered and heartbeating, with the channel this mode gives them.
      expectAgentChannel(agents, mode.moto ? 'sqs' : 'http');
      await awaitNodeStatus(
        rt.url,
        agents.map((a) => a.nodeId),
      );
    }, 120_000);

    afterAll(async () => {
      await stopAgents(agents);
      if (docker) await removeNodeContainers(docker, nodeNames);
      await rt?.stop();
      await proxy?.close();
      if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
      if (docker) expect(await mine()).toEqual([]);
    }, 60_000);

    let started: string[] = [];

    it('POST /containers/{imageId}/start with count 2 runs two containers with the asked limits', async () => {
      const res = await api('POST', `/containers/${IMAGES.main}/start`, {
        count: 2,
        resources: { cpu_limit: '0.5', memory_limit: '64m' },
        command: RUN_UNTIL_TERM,
      });
      expect(res.status, `${res.text}\n${agentLogs()}`).toBe(200);
      expect(res.body).toEqual({ started: [expect.any(String), expect.any(String)] });
      started = res.body.started;

      for (const id of started) {
        const info = await containerOf(id);
        expect(info.State.Running).toBe(true);
        expect(info.HostConfig.NanoCpus).toBe(500_000_000);
        expect(info.HostConfig.Memory).toBe(64 * MIB);
        expect(info.Name.replace(/^\//, '')).toBe(`container-${id}`);
        expect(info.Config.Labels).toMatchObject({
          [LABELS.managed]: 'true',
          [LABELS.instance]: id,
          [LABELS.image]: IMAGES.main,
          [LABELS.kind]: 'service',
        });
        expect(nodeNames).toContain(info.Config.Labels[LABELS.node]);
      }
      expect(await mine({ [LABELS.image]: IMAGES.main })).toHaveLength(2);
    });

    it('GET /containers, /containers/{imageId}/instances, /images and instance health describe them', async () => {
      const list = await api('GET', '/containers');
      expect(list.status, list.text).toBe(200);
      expect(list.body.total).toBe(list.body.containers.length);
      const listed = (list.body.containers as { id: string }[]).filter((c) => started.includes(c.id));
      expect(listed).toHaveLength(2);
      for (const c of listed) {
        expect(c).toEqual({
          id: c.id,
          name: `container-${c.id}`,
          image: IMAGES.main,
          status: 'running',
          ports: {},
          created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/),
          resources: { cpu_limit: '0.5', memory_limit: '64m' },
          node_id: expect.any(String),
        });
      }

      const instances = await instancesOf(IMAGES.main);
      expect(instances.map((i) => i.id).sort()).toEqual([...started].sort());
      for (const i of instances) {
        expect(i).toMatchObject({
          status: 'running',
          endpoint: null,
          resources: { cpu_limit: '0.5', memory_limit: '64m' },
        });
        // The node the engine says runs it.
        const info = await containerOf(i.id);
        expect(agentNamed(info.Config.Labels[LABELS.node]).nodeId).toBe(i.node_id);
      }

      const images = (await api('GET', '/images')).body.images as { image: string }[];
      expect(images.find((i) => i.image === IMAGES.main)).toEqual({
        image: IMAGES.main,
        desired_count: 2,
        current_running: 2,
        total_instances: 2,
        resources: { cpu_limit: '0.5', memory_limit: '64m' },
      });

      for (const id of started) {
        const health = await api('GET', `/containers/instances/${id}/health`);
        expect(health.status, health.text).toBe(200);
        expect(health.body).toEqual({
          cpu_usage: expect.any(Number),
          memory_usage: expect.any(Number),
          disk_usage: 0,
          status: 'healthy',
          errors: null,
        });
        expect(health.body.cpu_usage).toBeGreaterThanOrEqual(0);
        expect(health.body.memory_usage).toBeLessThan(75);
      }
      const unknown = await api('GET', '/containers/instances/no-such-instance/health');
      expect(unknown.status).toBe(404);
      expect(unknown.body).toEqual({ detail: expect.stringContaining('no-such-instance') });
    });

    it('PUT /containers/{imageId}/resources gives every running container the new limits on the engine', async () => {
      const before = new Map(
        await Promise.all(started.map(async (id) => [id, (await containerOf(id)).Id] as const)),
      );
      const res = await api('PUT', `/containers/${IMAGES.main}/resources`, {
        cpu_limit: '0.25',
        memory_limit: '96m',
      });
      expect(res.status, `${res.text}\n${agentLogs()}`).toBe(200);
      expect([...res.body.updated].sort()).toEqual([...started].sort());

      for (const id of started) {
        // Exactly one container per instance: Podman has no in-place update, the fallback recreated it.
        const info = await containerOf(id);
        expect(info.State.Running).toBe(true);
        expect(info.HostConfig.NanoCpus).toBe(250_000_000);
        expect(info.HostConfig.Memory).toBe(96 * MIB);
        expect(info.Name.replace(/^\//, '')).toBe(`container-${id}`);
        expect(info.Config.Labels[LABELS.instance]).toBe(id);
        expect(info.Config.Cmd).toEqual(RUN_UNTIL_TERM);
        if (info.Id !== before.get(id)) expect(await mine({ [LABELS.instance]: id })).toHaveLength(1);
      }
      const listed = ((await api('GET', '/containers')).body.containers as { id: string }[]).filter((c) =>
        started.includes(c.id),
      );
      expect(listed).toHaveLength(2);
      for (const c of listed)
        expect(c).toMatchObject({ status: 'running', resources: { cpu_limit: '0.25', memory_limit: '96m' } });
      expect((await instancesOf(IMAGES.main)).every((i) => i.status === 'running')).toBe(true);
      const image = ((await api('GET', '/images')).body.images as { image: string }[]).find(
        (i) => i.image === IMAGES.main,
      );
      expect(image).toMatchObject({
        desired_count: 2,
        current_running: 2,
        resources: { cpu_limit: '0.25', memory_limit: '96m' },
      });

      const missing = await api('PUT', '/containers/localhost/never-started:1/resources', { cpu_limit: '1' });
      expect(missing.status).toBe(404);
      expect(missing.body.detail).toEqual(expect.any(String));
    });

    it('POST /containers/{imageId}/stop and DELETE /containers/{idOrName}?force= behave as documented', async () => {
      const [first, second] = started as [string, string];

      const unknown = await api('POST', `/containers/${IMAGES.main}/stop`, {
        instanceId: 'no-such-instance',
      });
      expect(unknown.status).toBe(404);
      expect(unknown.body.detail).toEqual(expect.any(String));

      // Stop: the container stays on the engine, not running; one copy fewer is wanted, so no replacement.
      const stop = await api('POST', `/containers/${IMAGES.main}/stop`, { instanceId: first });
      expect(stop.status, `${stop.text}\n${agentLogs()}`).toBe(200);
      expect(stop.body).toEqual({ stopped: true });
      const stopped = await containerOf(first);
      expect(stopped.State.Running).toBe(false);
      expect(stopped.State.Status).toBe('exited');
      expect((await api('POST', `/containers/${IMAGES.main}/stop`, { instanceId: first })).body).toEqual({
        stopped: true,
      });
      expect((await api('GET', `/containers/instances/${first}/health`)).body).toMatchObject({
        status: 'stopped',
        cpu_usage: 0,
        memory_usage: 0,
      });
      const afterStop = (
        (await api('GET', '/containers')).body.containers as { id: string; status: string }[]
      )
        .filter((c) => started.includes(c.id))
        .map((c) => [c.id, c.status] as const);
      expect(Object.fromEntries(afterStop)).toEqual({ [first]: 'exited', [second]: 'running' });
      expect(
        ((await api('GET', '/images')).body.images as { image: string }[]).find(
          (i) => i.image === IMAGES.main,
        ),
      ).toMatchObject({ desired_count: 1, current_running: 1 });

      // Delete a running one without force: refused, nothing changes.
      const refused = await api('DELETE', `/containers/${second}`);
      expect(refused.status).toBe(409);
      expect(refused.body.detail).toMatch(/force/);
      expect((await containerOf(second)).State.Running).toBe(true);

      // With force, by the engine's container id (the recreated one: the control plane tracked it).
      const engineId = (await containerOf(second)).Id;
      const forced = await api('DELETE', `/containers/${engineId}?force=true`);
      expect(forced.status, `${forced.text}\n${agentLogs()}`).toBe(200);
      expect(forced.body).toEqual({ deleted: true, container_id: second, name: `container-${second}` });
      expect(await mine({ [LABELS.instance]: second })).toEqual([]);

      // The stopped one, by name, without force.
      const byName = await api('DELETE', `/containers/container-${first}?force=false`);
      expect(byName.status, byName.text).toBe(200);
      expect(byName.body).toEqual({ deleted: true, container_id: first, name: `container-${first}` });
      expect(await mine({ [LABELS.instance]: first })).toEqual([]);

      expect((await api('DELETE', '/containers/container-0000000000')).status).toBe(404);
      const remaining = ((await api('GET', '/containers')).body.containers as { id: string }[]).filter((c) =>
        started.includes(c.id),
      );
      expect(remaining).toEqual([]);
      expect(
        ((await api('GET', '/images')).body.images as { image: string }[]).find(
          (i) => i.image === IMAGES.main,
        ),
      ).toMatchObject({ desired_count: 0, current_running: 0, total_instances: 0 });
      expect(await mine({ [LABELS.image]: IMAGES.main })).toEqual([]);
    });

    it('a start the node refuses (a disk limit its storage cannot enforce) leaves no desired count and no service', async () => {
      // Neither engine here can enforce a size limit (overlay on ext4): both agents refuse.
      const res = await api('POST', `/containers/${IMAGES.refused}/start`, {
        count: 1,
        resources: { disk_limit: '1g' },
        command: RUN_UNTIL_TERM,
      });
      expect(res.status, `${res.text}\n${agentLogs()}`).toBe(422);
      expect(res.text).toMatch(/refused to start/);
      expect(res.text).toMatch(/diskLimitGb=1 cannot be enforced/);
      // A reconcile after the refusal places nothing again.
      await emit(rt.ctx, { type: 'reconcile', imageId: IMAGES.refused });
      const image = ((await api('GET', '/images')).body.images as { image: string }[]).find(
        (i) => i.image === IMAGES.refused,
      );
      expect(image ?? { desired_count: 0, current_running: 0 }).toMatchObject({
        desired_count: 0,
        current_running: 0,
      });
      expect((await instancesOf(IMAGES.refused)).filter((i) => i.status !== 'removed')).toEqual([]);
      const services = (await api('GET', '/api/swarm/services')).body as { image: string }[];
      expect(services.filter((s) => s.image === IMAGES.refused)).toEqual([]);
      expect(await mine({ [LABELS.image]: IMAGES.refused })).toEqual([]);
    });

    it("a service mounting / or the engine socket is refused by the nodes' own policy; the API key cannot widen it", async () => {
      const socket = dockerOptions().socketPath!;
      for (const [source, rule] of [
        ['/', /refused by this node's policy \(host-paths\).*root folder/],
        // Refused up front by the control plane from the policies the agents reported: it cannot
        // tell a socket from a file on the node, so the folder rule names it (the agent names the socket rule).
        [socket, /refused by this node's policy \((engine-socket|host-paths)\)/],
        ['/etc', /refused by this node's policy \(host-paths\).*--allow-host-paths/],
      ] as const) {
        const name = uniqueName('policy');
        const res = await api('POST', '/api/swarm/services', {
          name,
          image: IMAGES.refused,
          replicas: 1,
          mounts: [{ source, target: '/host' }],
        });
        expect(res.status, `${res.text}\n${agentLogs()}`).toBe(422);
        expect(res.body.detail).toMatch(rule);
        expect(res.body.detail).toMatch(/Nothing was kept/);
        const services = (await api('GET', '/api/swarm/services')).body as { name: string; image: string }[];
        expect(services.filter((s) => s.name === name || s.image === IMAGES.refused)).toEqual([]);
      }
      expect(await mine({ [LABELS.image]: IMAGES.refused })).toEqual([]);
    });

    it('two agents with different node names on one machine share the load', async () => {
      const res = await api('POST', `/containers/${IMAGES.spread}/start`, {
        count: 4,
        command: RUN_UNTIL_TERM,
      });
      expect(res.status, `${res.text}\n${agentLogs()}`).toBe(200);
      expect(res.body.started).toHaveLength(4);

      const instances = await instancesOf(IMAGES.spread);
      expect(instances.every((i) => i.status === 'running')).toBe(true);
      const perNode = (ids: string[]) =>
        Object.fromEntries([...new Set(ids)].map((id) => [id, ids.filter((x) => x === id).length]));
      expect(perNode(instances.map((i) => i.node_id))).toEqual({
        [agents[0]!.nodeId]: 2,
        [agents[1]!.nodeId]: 2,
      });

      const onEngine = await mine({ [LABELS.image]: IMAGES.spread });
      expect(onEngine.every((c) => c.state === 'running')).toBe(true);
      expect(perNode(onEngine.map((c) => c.labels[LABELS.node]!))).toEqual({
        [nodeNames[0]!]: 2,
        [nodeNames[1]!]: 2,
      });
      expect(onEngine.map((c) => c.labels[LABELS.instance]).sort()).toEqual([...res.body.started].sort());
    });

    /** Waits until the image has exactly one container on the engine, running, for a live instance other than `not`. */
    const oneRunningReplacement = async (image: string, not: string[], timeoutMs: number) =>
      eventually(
        `one running replacement of ${image}`,
        async () => {
          const onEngine = await mine({ [LABELS.image]: image });
          expect(onEngine, JSON.stringify(onEngine)).toHaveLength(1);
          const c = onEngine[0]!;
          expect(c.state).toBe('running');
          expect(not).not.toContain(c.labels[LABELS.instance]);
          const instances = await instancesOf(image);
          expect(instances.filter((i) => i.status === 'running').map((i) => i.id)).toEqual([
            c.labels[LABELS.instance],
          ]);
          expect(instances.filter((i) => i.status === 'running' || i.status === 'created')).toHaveLength(1);
          return c;
        },
        timeoutMs,
        250,
      );

    it('a container killed or removed behind the agent comes back to the desired count', async () => {
      const res = await api('POST', `/containers/${IMAGES.crash}/start`, {
        count: 1,
        command: RUN_UNTIL_TERM,
      });
      expect(res.status, `${res.text}\n${agentLogs()}`).toBe(200);
      const original = res.body.started[0] as string;
      const [c0] = (await mine({ [LABELS.instance]: original })) as [EngineContainer];

      // Killed: the agent's watcher reports the exit, the control plane places a replacement and removes the dead copy.
      await docker.getContainer(c0.id).kill();
      const c1 = await oneRunningReplacement(IMAGES.crash, [original], 30_000);

      // Removed: only the heartbeat can tell (the container is just missing); same outcome.
      await docker.getContainer(c1.id).remove({ force: true });
      await oneRunningReplacement(IMAGES.crash, [original, c1.labels[LABELS.instance]!], 45_000);

      const image = ((await api('GET', '/images')).body.images as { image: string }[]).find(
        (i) => i.image === IMAGES.crash,
      );
      expect(image).toMatchObject({ desired_count: 1, current_running: 1 });
    }, 90_000);

    /**
     * Asks for one copy of `image` and SIGKILLs the agent told to run it in the middle of the start,
     * at an exact point (the agents reach the engine through `proxy`): `before-engine`, when its
     * start request for the created container is about to reach the engine (the request is
     * dropped: the container stays created); `after-engine`, once the engine started the container
     * but before the agent heard so (it never reports). Returns the still-open API call too.
     */
    const killDuringStart = async (image: string, when: 'before-engine' | 'after-engine') => {
      let done!: (v: { victim: AgentProcess; containerId: string; instanceId: string }) => void;
      const killed = new Promise<{ victim: AgentProcess; containerId: string; instanceId: string }>(
        (r) => (done = r),
      );
      proxy.onStart(async (containerId): Promise<StartVerdict> => {
        const info = await docker
          .getContainer(containerId)
          .inspect()
          .catch(() => undefined);
        const labels = info?.Config.Labels ?? {};
        if (labels[LABELS.image] !== image) return { action: 'forward' };
        proxy.onStart(undefined);
        const victim = agentNamed(labels[LABELS.node]);
        const kill = async () => {
          await victim.kill('SIGKILL');
          done({ victim, containerId: info!.Id, instanceId: labels[LABELS.instance]! });
        };
        if (when === 'before-engine') {
          await kill();
          return { action: 'drop' };
        }
        return { action: 'hold', onAnswer: kill };
      });
      const request = api('POST', `/containers/${image}/start`, { count: 1, command: RUN_UNTIL_TERM });
      request.catch(() => undefined); // awaited by the test; never an unhandled rejection if it fails first
      let timer: NodeJS.Timeout | undefined;
      try {
        const kill = await Promise.race([
          killed,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no start of ${image} went through the proxy in 20 s\n${agentLogs()}`)),
              20_000,
            );
          }),
        ]);
        const state = (await docker.getContainer(kill.containerId).inspect()).State.Status;
        return { ...kill, request, state };
      } finally {
        clearTimeout(timer);
        proxy.onStart(undefined);
      }
    };

    it('an agent SIGKILLed mid-start, silent until its copy failed over, then restarted: one container remains', async () => {
      const { request, victim, containerId, instanceId, state } = await killDuringStart(
        IMAGES.killFailover,
        'before-engine',
      );
      const killedAt = Date.now();
      expect(state).toBe('created');
      const survivor = agents.find((a) => a !== victim)!;

      // Silent past NODE_OFFLINE_AFTER_SECONDS; the every-minute sweep is fired now instead of waited for.
      await awaitNodeStatus(rt.url, [victim.nodeId], 'offline', (OFFLINE_AFTER_S + 10) * 1000, 250);
      await emit(rt.ctx, { type: 'nodes.sweep' });
      await eventually(
        'a replacement running on the other node',
        async () => {
          const running = (await instancesOf(IMAGES.killFailover)).filter((i) => i.status === 'running');
          expect(running).toEqual([expect.objectContaining({ node_id: survivor.nodeId })]);
          expect(running[0]!.id).not.toBe(instanceId);
        },
        20_000,
      );
      // The start call gave up waiting on the dead agent.
      const res = await request;
      expect(res.status, res.text).toBe(202);
      expect(res.body).toMatchObject({
        status: 'pending',
        pending_commands: [expect.any(String)],
        started: [instanceId],
      });

      // The killed agent's last long-poll (up to 20 s: SQS WaitTimeSeconds, or the HTTP channel's
      // wait) may still be open on the server and would swallow the next command for the 120 s
      // visibility timeout: restart once it has surely ended.
      await sleep(Math.max(0, killedAt + 21_000 - Date.now()));
      await victim.start();

      // Back: told to remove the half-started copy; one container remains, the replacement.
      const kept = await oneRunningReplacement(IMAGES.killFailover, [instanceId], 30_000);
      expect(kept.labels[LABELS.node]).toBe(survivor.name);
      expect(await mine({ [LABELS.instance]: instanceId })).toEqual([]);
      await expect(docker.getContainer(containerId).inspect()).rejects.toMatchObject({ statusCode: 404 });
    }, 90_000);

    it('an agent SIGKILLed mid-start and restarted at once adopts the container: no duplicate', async () => {
      const { request, victim, containerId, instanceId, state } = await killDuringStart(
        IMAGES.killRestart,
        'after-engine',
      );
      const nodeId = victim.nodeId;
      expect(state).toBe('running');

      // Same name and state dir: same node; its heartbeat reports the container and the instance runs.
      expect(await victim.start()).toBe(nodeId);
      await eventually(
        'the instance running on its node',
        async () => {
          const instances = await instancesOf(IMAGES.killRestart);
          expect(instances).toEqual([
            expect.objectContaining({ id: instanceId, status: 'running', node_id: nodeId }),
          ]);
        },
        20_000,
      );
      // Several heartbeats later still exactly one container, the one created before the kill.
      for (const until = Date.now() + 3_000; Date.now() < until; await sleep(500)) {
        const onEngine = await mine({ [LABELS.image]: IMAGES.killRestart });
        expect(onEngine.map((c) => [c.id, c.state, c.labels[LABELS.instance]])).toEqual([
          [containerId, 'running', instanceId],
        ]);
      }
      expect(await mine({ [LABELS.instance]: instanceId })).toHaveLength(1);

      // The agent died before reporting the start. Where the channel hands a dead agent's
      // commands back at once (the embedded runtime), the restarted agent runs it again, adopts
      // the container and answers within the call's wait (200); else the call answered 202.
      const res = await request;
      if (res.status === 200) expect(res.body).toEqual({ started: [instanceId] });
      else {
        expect(res.status, res.text).toBe(202);
        expect(res.body).toMatchObject({
          status: 'pending',
          pending_commands: [expect.any(String)],
          started: [instanceId],
        });
      }
    }, 60_000);
  });
});
