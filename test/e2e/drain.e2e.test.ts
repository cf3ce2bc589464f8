/**
 * Drain and retire end to end: the embedded local runtime, two REAL agents (agent/main.ts as child
 * processes) and Podman. A running service copy is drained off one node: its replacement runs on
 * the other and the drained node's container is removed from the engine. Retiring a node with
 * stop=true removes its containers from the engine; without it they stay.
 *
 * Containers are found by label fleet.node = one of this suite's node names, so other suites
 * sharing the engine are never counted nor touched; afterAll removes every one of them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../protocol/messages.js';
import { agentLogTails, agentProcesses, startAgents, stopAgents } from '../harness/fleet.js';
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
  tagImage,
  untagImage,
  type ControlPlane,
} from './harness.js';

const engineStatus = requireEngine();

describeWith(engineStatus, 'drain and retire end to end: local runtime, two real agents, Podman', () => {
  const runId = uniqueName('e2e-drain');
  const image = `localhost/${runId}:svc`;
  const nodeNames = [`${runId}-a`, `${runId}-b`];
  let docker: Docker;
  let rt: ControlPlane;
  let stateRoot: string;
  let agents: AgentProcess[] = [];
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const running = async (node: string) =>
    (await engineContainers(docker, [node], { [LABELS.image]: image })).filter((c) => c.state === 'running');
  const logs = () => agentLogTails(agents, 20);

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    await tagImage(docker, BUSYBOX_IMAGE, image);
    rt = await startControlPlane({
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: '6',
        COMMAND_WAIT_MS: '15000',
        AWS_ENDPOINT_URL: undefined,
      },
      moto: false,
    });
    stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
    agents = agentProcesses({ url: rt.url, names: nodeNames, stateRoot });
    await startAgents(agents);
  }, 120_000);

  afterAll(async () => {
    await stopAgents(agents);
    if (docker) {
      await removeNodeContainers(docker, nodeNames);
      await untagImage(docker, image);
    }
    await rt?.stop();
    if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
  }, 60_000);

  it('drains a running copy to the other node and removes it from the drained one', async () => {
    const [a, b] = nodeNames as [string, string];
    const start = await api('POST', `/containers/${image}/start`, { count: 2, command: RUN_UNTIL_TERM });
    expect(start.status, `${start.text}\n${logs()}`).toBe(200);
    expect((await running(a)).length).toBe(1);
    expect((await running(b)).length).toBe(1);
    const onA = (await running(a))[0]!.labels[LABELS.instance];

    const drain = await api('POST', `/api/nodes/${a}/drain`);
    expect(drain.status, drain.text).toBe(200);
    const nodeB = agents[1]!.nodeId;
    expect(drain.body.moved).toEqual([
      { kind: 'service', id: onA, image, to_node: nodeB, replacement: expect.any(String) },
    ]);
    expect(drain.body.not_moved).toEqual([]);
    const replacement = drain.body.moved[0].replacement as string;

    // On the engine: the replacement runs on b, nothing of the service is left on a.
    await eventually('the drained copy is removed from the engine', async () => {
      expect(await engineContainers(docker, [a], { [LABELS.image]: image })).toEqual([]);
    });
    const onB = await running(b);
    expect(onB.map((c) => c.labels[LABELS.instance]).sort()).toContain(replacement);
    expect(onB).toHaveLength(2);
    const nodes = (await api('GET', '/api/nodes/')).body.nodes as {
      name: string;
      cordoned: boolean;
      draining: boolean;
    }[];
    expect(nodes.find((n) => n.name === a)).toMatchObject({ cordoned: true, draining: true });
  }, 90_000);

  it('retire with stop=true removes the node and its containers from the engine', async () => {
    const b = nodeNames[1]!;
    const res = await api('DELETE', `/api/nodes/${b}?stop=true`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.stopped).toHaveLength(2);
    expect(res.body.left_on_host).toEqual([]);
    expect(await engineContainers(docker, [b], { [LABELS.image]: image })).toEqual([]);
    // By id: with API_AUTH off, b's agent may register again at once, as a new node.
    const ids = ((await api('GET', '/api/nodes/')).body.nodes as { id: string }[]).map((n) => n.id);
    expect(ids).not.toContain(agents[1]!.nodeId);
    expect(ids).toContain(agents[0]!.nodeId);
  }, 90_000);
});
