/**
 * A suite's fleet: real agent processes (test/e2e/harness.ts `AgentProcess`) made, started and
 * stopped as a set, their nodes awaited in GET /api/nodes/, and the fake model server declared in
 * the model catalogue. Each helper fails the test as the suites' own lines did: an agent that does
 * not run fails it with its log, a node that does not come online with its status.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { expect } from 'vitest';
import {
  AgentProcess,
  call,
  eventually,
  removeNodeContainers,
  type AgentProcessOptions,
  type ControlPlane,
} from '../e2e/harness.js';
import { MODEL_SERVER_PORT } from './model-server-image.js';

/** An agent's environment: this process's, less the machine's own key, URL and node name, plus `extra`. */
export function agentEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, FLEET_API_KEY: '', FLEET_URL: '', FLEET_NODE_NAME: '', ...extra };
}

export interface AgentSetOptions extends Omit<AgentProcessOptions, 'name' | 'stateDir'> {
  names: readonly string[];
  /** Each agent keeps its state in `<stateRoot>/<name>`. */
  stateRoot: string;
}

/**
 * One agent per name, beating every second unless told, with `agentEnv()` unless given an env.
 * Not started: the suite keeps the set first, so that its afterAll stops whichever did start.
 */
export function agentProcesses({ names, stateRoot, ...options }: AgentSetOptions): AgentProcess[] {
  return names.map(
    (name) =>
      new AgentProcess({
        heartbeatSeconds: 1,
        env: agentEnv(),
        ...options,
        name,
        stateDir: join(stateRoot, name),
      }),
  );
}

/** Starts every agent at once; rejects with the log of one that exits or does not run within `timeoutMs`. */
export async function startAgents(agents: readonly AgentProcess[], timeoutMs?: number): Promise<void> {
  await Promise.all(agents.map((a) => a.start(timeoutMs)));
}

/** Signals every agent (SIGKILL unless told) and waits until each process is gone. */
export async function stopAgents(
  agents: readonly (AgentProcess | undefined)[],
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  await Promise.all(agents.map((a) => a?.kill(signal)));
}

/**
 * A suite's fleet taken down, in this order: its agents SIGKILLed, their containers removed from
 * the engine, the control plane stopped (the stack's stop fails on calls its roles do not allow),
 * the state folder deleted. A part the set-up never reached is passed over.
 */
export async function tearDownFleet(fleet: {
  agents: readonly (AgentProcess | undefined)[];
  docker: Docker | undefined;
  nodeNames: readonly string[];
  controlPlane: ControlPlane | undefined;
  stateRoot: string | undefined;
}): Promise<void> {
  await stopAgents(fleet.agents);
  if (fleet.docker) await removeNodeContainers(fleet.docker, fleet.nodeNames);
  await fleet.controlPlane?.stop();
  if (fleet.stateRoot) await rm(fleet.stateRoot, { recursive: true, force: true });
}

/** The last `lines` log lines of each agent, for failure messages. */
export function agentLogTails(agents: readonly AgentProcess[], lines = 25): string {
  return agents.map((a) => `--- ${a.name} (pid ${a.pid})\n${a.logTail(lines)}`).join('\n');
}

/** Each agent logged "agent running" on the command channel this mode gives it. */
export function expectAgentChannel(agents: readonly AgentProcess[], channel: 'http' | 'sqs'): void {
  for (const a of agents)
    expect(a.lines.join('\n')).toMatch(new RegExp(`"agent running".*"channel":"${channel}"`));
}

/** Waits until GET /api/nodes/ at `url` shows each of these nodes with `status`. */
export async function awaitNodeStatus(
  url: string,
  nodeIds: readonly string[],
  status = 'online',
  timeoutMs?: number,
  everyMs?: number,
): Promise<void> {
  await eventually(
    `node${nodeIds.length === 1 ? '' : 's'} ${nodeIds.join(', ')} ${status}`,
    async () => {
      const res = await call(url, 'GET', '/api/nodes/');
      expect(res.status, res.text).toBe(200);
      const nodes = res.body.nodes as { id: string; status: string }[];
      for (const id of nodeIds) expect(nodes.find((n) => n.id === id)?.status, id).toBe(status);
    },
    timeoutMs,
    everyMs,
  );
}

/**
 * The catalogue's declaration of the fake model server (test/fixtures/model-server) in `image`:
 * no GPU memory (the test nodes have none), a fast step, a short load.
 */
export function modelServerDeclaration(image: string) {
  return {
    kind: 'image',
    image,
    port: MODEL_SERVER_PORT,
    protocol: 'vision-generate',
    path: '/generate',
    gpuMemoryMb: 0,
    maxWidth: 1024,
    maxHeight: 1024,
    minSteps: 1,
    maxSteps: 50,
    loadSeconds: 2,
    env: { STEP_MS: '5' },
  };
}

/** PUT /models/catalog/{model} of the fake model server in `image`; it must answer 200. */
export async function putModelServer(url: string, model: string, image: string): Promise<void> {
  const res = await call(url, 'PUT', `/models/catalog/${model}`, modelServerDeclaration(image));
  expect(res.status, res.text).toBe(200);
}
