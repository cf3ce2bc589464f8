/**
 * An agent that is stopped (SIGTERM: systemctl stop, a container stop) tells the control plane, and
 * the node is offline at once: the control plane runs with a 10-minute offline window, so only the
 * agent's word can take it offline within this test. A stop is not a retire: the node stays
 * listed, its container keeps running, a command sent meanwhile waits on its queue and runs once
 * the agent is started again, which brings the node back online. A real agent process, Podman,
 * the embedded runtime (HTTP channel) and, with moto, the runtime on the emulator (SQS channel).
 *
 * Containers are found by label fleet.node = this suite's node name; afterAll removes them.
 */
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RESTART_MARKER } from '../../agent/state.js';
import { LABELS } from '../../protocol/messages.js';
import { agentEnv, expectAgentChannel } from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import {
  bothServices,
  describeWith,
  emulatorDeployment,
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
  removeNodeContainers,
  RUN_UNTIL_TERM,
  startControlPlane,
  tagImage,
  untagImage,
  type ControlPlane,
} from './harness.js';

const engineStatus = requireEngine();
const motoStatus = requireMoto();

const modes = [
  { name: 'embedded control plane, HTTP command channel', moto: false, status: engineStatus },
  {
    name: 'control plane on moto, SQS command queue',
    moto: true,
    status: bothServices(engineStatus, motoStatus),
  },
];

interface NodeView {
  id: string;
  name: string;
  status: string;
  cordoned: boolean;
}

for (const mode of modes) {
  describeWith(mode.status, `an agent that stops takes its node offline at once: ${mode.name}`, () => {
    const runId = uniqueName('e2e-stop');
    const image = `localhost/${runId}:svc`;
    const nodeName = `${runId}-a`;
    let docker: Docker;
    let rt: ControlPlane;
    let stateRoot: string;
    let agent: AgentProcess;
    const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
    const nodeView = async () =>
      ((await api('GET', '/api/nodes/')).body.nodes as NodeView[]).find((n) => n.name === nodeName);
    const running = async () =>
      (await engineContainers(docker, [nodeName], { [LABELS.image]: image })).filter(
        (c) => c.state === 'running',
      );

    beforeAll(async () => {
      docker = dockerClient();
      await ensureBusyboxImage(docker);
      await tagImage(docker, BUSYBOX_IMAGE, image);
      const env: Record<string, string | undefined> = {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        // Far longer than the test: the node can only go offline by its agent's word.
        NODE_OFFLINE_AFTER_SECONDS: '600',
        COMMAND_WAIT_MS: '2000',
        AWS_ENDPOINT_URL: undefined,
        ...(mode.moto ? emulatorDeployment(runId) : {}),
      };
      rt = await startControlPlane({ env, moto: mode.moto, stack: false });
      stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
      agent = new AgentProcess({
        url: rt.url,
        name: nodeName,
        stateDir: join(stateRoot, nodeName),
        heartbeatSeconds: 1,
        env: agentEnv({ FLEET_LABELS: '' }),
      });
      await agent.start();
      expectAgentChannel([agent], mode.moto ? 'sqs' : 'http');
    }, 120_000);

    afterAll(async () => {
      await agent?.kill('SIGKILL');
      if (docker) {
        await removeNodeContainers(docker, [nodeName]);
        await untagImage(docker, image);
      }
      await rt?.stop();
      if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
    }, 60_000);

    it('is offline right after the stop, keeps its queue, and runs what was sent meanwhile once started again', async () => {
      // Prepare: one running copy on the node
      const start = await api('POST', `/containers/${image}/start`, { count: 1, command: RUN_UNTIL_TERM });
      expect(start.status, `${start.text}\n${agent.logTail()}`).toBe(200);
      const instanceId = start.body.started[0] as string;
      expect(await running()).toHaveLength(1);
      expect(await nodeView()).toMatchObject({ id: agent.nodeId, status: 'online', cordoned: false });
      const nodeId = agent.nodeId;

      // Act: stop the agent as systemd or the engine does
      await agent.kill('SIGTERM');

      // Assess: offline now, not retired, its container untouched
      expect(agent.child!.exitCode, agent.logTail()).toBe(0);
      expect(agent.lines.some((l) => l.includes('control plane told'))).toBe(true);
      expect(await nodeView()).toMatchObject({ id: nodeId, status: 'offline', cordoned: false });
      expect(await running()).toHaveLength(1);
      // Nothing new is placed on it.
      const refused = await api('POST', `/containers/${image}/start`, { count: 1, command: RUN_UNTIL_TERM });
      expect(refused.status, refused.text).toBe(409);

      // A command sent while it is stopped waits on its queue.
      const stop = await api('POST', `/containers/${image}/stop`, { instanceId, timeout: 0 });
      expect(stop.status, stop.text).toBe(202);
      const [commandId] = stop.body.pending_commands as string[];
      expect((await api('GET', `/commands/${commandId}`)).body).toMatchObject({ status: 'pending' });

      // Started again: the same node, online, and the waiting command ran.
      await agent.start();
      expect(agent.nodeId).toBe(nodeId);
      await eventually('the node is online again', async () => {
        expect(await nodeView()).toMatchObject({ id: nodeId, status: 'online' });
      });
      await eventually(
        'the command sent while stopped ran',
        async () => {
          const command = await api('GET', `/commands/${commandId}`);
          expect(command.body, agent.logTail()).toMatchObject({ status: 'succeeded' });
        },
        30_000,
      );
      expect(await running()).toEqual([]);
    }, 120_000);

    it('an announced restart (install.sh upgrading it) leaves the node online', async () => {
      // Prepare: the marker install.sh leaves before `systemctl restart`
      const marker = join(stateRoot, nodeName, RESTART_MARKER);
      await writeFile(marker, '');
      const nodeId = agent.nodeId;
      // Act
      await agent.kill('SIGTERM');
      // Assess: still online (its last heartbeat is seconds old), the marker used up
      expect(agent.child!.exitCode, agent.logTail()).toBe(0);
      expect(agent.lines.some((l) => l.includes('restart announced'))).toBe(true);
      expect(await nodeView()).toMatchObject({ id: nodeId, status: 'online' });
      await expect(access(marker)).rejects.toThrow();
    }, 60_000);
  });
}
