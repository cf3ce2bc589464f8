/**
 * Runs the fleet's simulated agents in a child process (agent-process.ts) for the busy profile. In
 * the measuring process 1,000 agents' heartbeats, polls and task runs share the event loop with the
 * handlers being timed and inflate their Lambda duration with work that is not the control plane's
 * (the busy 1,000-node figure was $2.58 with it, $1.42 without). Apart, the measuring process runs
 * only the control plane: its handlers, and the requests the agents send it.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import type { Fleet } from './fleet.js';
import type { Hardware } from './sim-node.js';

export type HostToAgents =
  | {
      type: 'start';
      url: string;
      hardware: Hardware;
      nodes: { name: string; nodeId: string; token: string; interval: number; servers: [string, string][] }[];
    }
  | { type: 'stop' };

export type AgentsToHost =
  | { type: 'ready' }
  | { type: 'finished'; total: number }
  | { type: 'stopped'; servers: [string, string][][] };

export interface AgentsApart {
  /** Tasks the agents finished since they started. */
  finished(): number;
  /** Stops the agents; the model servers they started are handed back to the fleet's nodes. */
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '../..');

export async function startAgentsApart(fleet: Fleet, hardware: Hardware): Promise<AgentsApart> {
  const child = fork(join(import.meta.dirname, 'agent-process.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let finished = 0;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const next = (type: AgentsToHost['type']) =>
    new Promise<AgentsToHost>((resolve, reject) => {
      const on = (m: AgentsToHost) => {
        if (m.type !== type) return;
        child.off('message', on);
        resolve(m);
      };
      child.on('message', on);
      void exited.then((code) => reject(new Error(`the agents' process exited (${code}) before '${type}'`)));
    });
  child.on('message', (m: AgentsToHost) => {
    if (m.type === 'finished') finished = m.total;
  });
  const ready = next('ready');
  child.send({
    type: 'start',
    url: fleet.rt.url,
    hardware,
    nodes: fleet.nodes.map((n) => ({
      name: n.name,
      nodeId: n.nodeId,
      token: n.token,
      interval: n.heartbeatIntervalSeconds,
      servers: [...n.servers.entries()],
    })),
  } satisfies HostToAgents);
  await ready;
  return {
    finished: () => finished,
    stop: async () => {
      const stopped = next('stopped');
      child.send({ type: 'stop' } satisfies HostToAgents);
      const { servers } = (await stopped) as Extract<AgentsToHost, { type: 'stopped' }>;
      fleet.nodes.forEach((n, i) => {
        n.servers.clear();
        for (const [model, instanceId] of servers[i] ?? []) n.servers.set(model, instanceId);
      });
      await exited;
      // The server ends the polls the agents left open as their sockets close (their log lines).
      await new Promise((r) => setTimeout(r, 200));
      await fleet.settle();
    },
  };
}
