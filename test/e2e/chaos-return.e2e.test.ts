/**
 * Chaos: a node that comes back after its work moved. Two REAL agents on Podman and the embedded
 * control plane; agent A is SIGKILLed (its containers keep running on the engine), a restart of
 * its copy is queued for it while it is away, it goes offline and its copy is replaced on B.
 * When A returns, its stale copy is removed (not doubled: the image runs exactly its desired count,
 * all on B), the stale command it finds runs and its result is taken without changing anything,
 * and every command has exactly one outcome.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { emit } from '../../functions/core/events.js';
import { fleetKeys } from '../../functions/core/keys.js';
import type { CommandItem } from '../../functions/nodes/commands.js';
import { getInstance } from '../../functions/orchestrator/model.js';
import { queryAll } from '../../functions/ports/store.js';
import { LABELS } from '../../protocol/messages.js';
import {
  agentLogTails,
  agentProcesses,
  awaitNodeStatus,
  startAgents,
  tearDownFleet,
} from '../harness/fleet.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { describeWith, engine as dockerClient, requireEngine, uniqueName } from '../harness/services.js';
import {
  AgentProcess,
  buildAgentBundle,
  call,
  engineContainers,
  eventually,
  RUN_UNTIL_TERM,
  startControlPlane,
  tagImage,
  untagImage,
  type ControlPlane,
} from './harness.js';

const OFFLINE_AFTER_S = 4;

const engineStatus = requireEngine();
const runId = uniqueName('chaosrt');
const IMAGE = `localhost/${runId}:moved`;
const nodeNames = [`${runId}-a`, `${runId}-b`];

describeWith(engineStatus, 'chaos: a node returns after its work moved (embedded, Podman)', () => {
  let docker: Docker;
  let rt: ControlPlane;
  let stateRoot: string;
  let agents: AgentProcess[] = [];
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);
  const agentLogs = () => agentLogTails(agents, 30);

  beforeAll(async () => {
    docker = dockerClient();
    await ensureBusyboxImage(docker);
    await tagImage(docker, BUSYBOX_IMAGE, IMAGE);
    rt = await startControlPlane({
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        NODE_OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_S),
        COMMAND_WAIT_MS: '3000',
        RESTART_BACKOFF_SECONDS: '1',
        AWS_ENDPOINT_URL: undefined,
      },
      moto: false,
    });
    stateRoot = await mkdtemp(join(tmpdir(), `${runId}-`));
    const bundle = join(stateRoot, 'agent.mjs');
    await buildAgentBundle(bundle);
    agents = agentProcesses({ url: rt.url, names: nodeNames, stateRoot, entry: [bundle] });
    await startAgents(agents);
  }, 120_000);

  afterAll(async () => {
    await tearDownFleet({ agents, docker, nodeNames, controlPlane: rt, stateRoot });
    if (docker) await untagImage(docker, IMAGE);
  }, 60_000);

  it('its stale copies are removed, not doubled; its stale command result changes nothing', async () => {
    const [a, b] = agents as [AgentProcess, AgentProcess];
    const started = await api('POST', `/containers/${IMAGE}/start`, { count: 2, command: RUN_UNTIL_TERM });
    expect(started.status, `${started.text}\n${agentLogs()}`).toBe(200);
    const onEngine = await engineContainers(docker, nodeNames, { [LABELS.image]: IMAGE });
    const stale = onEngine.find((c) => c.labels[LABELS.node] === a.name);
    expect(stale, 'one copy on each node').toBeDefined();
    expect(onEngine.filter((c) => c.labels[LABELS.node] === b.name)).toHaveLength(1);
    const staleInstance = stale!.labels[LABELS.instance]!;

    // A dies; its container runs on. A restart of that copy is queued for it while it is away.
    await a.kill('SIGKILL');
    const restart = await api('POST', `/api/swarm/containers/${staleInstance}/restart`);
    expect(restart.status, restart.text).toBe(202);
    const restartCommand = restart.body.pending_commands[0] as string;

    // Offline past the threshold; the sweep (every minute) is fired now instead of waited for.
    await awaitNodeStatus(rt.url, [a.nodeId], 'offline', (OFFLINE_AFTER_S + 15) * 1000, 250);
    await emit(rt.ctx, { type: 'nodes.sweep' });
    await eventually(
      'both copies running on B',
      async () => {
        const running = (
          (await api('GET', `/containers/${IMAGE}/instances`)).body.instances as {
            id: string;
            status: string;
            node_id: string;
          }[]
        ).filter((i) => i.status === 'running');
        expect(running.map((i) => i.node_id)).toEqual([b.nodeId, b.nodeId]);
      },
      30_000,
      250,
    );
    expect((await getInstance(rt.ctx, staleInstance))?.status).toBe('orphaned');
    // Meanwhile the engine holds three running copies: two on B and A's, which nobody can reach.
    expect(
      (await engineContainers(docker, nodeNames, { [LABELS.image]: IMAGE })).filter(
        (c) => c.state === 'running',
      ),
    ).toHaveLength(3);

    // A returns.
    await a.start();
    await eventually(
      "A's stale copy removed; two copies, on B",
      async () => {
        const now = await engineContainers(docker, nodeNames, { [LABELS.image]: IMAGE });
        expect(
          now.filter((c) => c.labels[LABELS.node] === a.name),
          agentLogs(),
        ).toEqual([]);
        expect(now.filter((c) => c.labels[LABELS.node] === b.name && c.state === 'running')).toHaveLength(2);
        expect((await getInstance(rt.ctx, staleInstance))?.status).toBe('removed');
        const commands = (
          await Promise.all(
            agents.map((x) =>
              queryAll<CommandItem>(rt.ctx.store, fleetKeys.nodeCommandsPk(x.nodeId), { index: 'gsi1' }),
            ),
          )
        ).flat();
        expect(commands.filter((c) => c.status === 'pending').map((c) => `${c.type} ${c.commandId}`)).toEqual(
          [],
        );
      },
      45_000,
      500,
    );
    // The stale restart ran or failed on a copy already gone; either way it is settled once and changed nothing.
    const stored = await api('GET', `/commands/${restartCommand}`);
    expect(stored.status, stored.text).toBe(200);
    expect(['succeeded', 'failed']).toContain(stored.body.status);
    expect((await getInstance(rt.ctx, staleInstance))?.status).toBe('removed');
    const images = (await api('GET', '/images')).body.images as { image: string }[];
    expect(images.find((i) => i.image === IMAGE)).toMatchObject({ desired_count: 2, current_running: 2 });
    // Several heartbeats later: still two, none on A.
    await awaitNodeStatus(rt.url, [a.nodeId], 'online', 10_000, 250);
    const final = await engineContainers(docker, nodeNames, { [LABELS.image]: IMAGE });
    expect(final.map((c) => [c.labels[LABELS.node], c.state])).toEqual([
      [b.name, 'running'],
      [b.name, 'running'],
    ]);
  }, 180_000);
});
