/**
 * The busy profile's simulated agents, in a process of their own (agents-apart.ts starts it): they
 * take over the registered nodes' credentials, beat at their interval (spread over it, as a real
 * fleet's beats are) and serve commands with the agent's 20 s long poll, so their work never runs
 * on the control plane's event loop and the handlers' measured durations are the control plane's alone.
 */
import { SimNode, fixtureCollectors } from './sim-node.js';
import type { AgentsToHost, HostToAgents } from './agents-apart.js';

/** The agent's command channel long-polls 20 s (agent/channel.ts); the route's maximum. */
const POLL_WAIT_SECONDS = 20;

const send = (m: AgentsToHost) => process.send!(m);
const nodes: SimNode[] = [];
let stopped = false;
let reported = 0;
const timers: NodeJS.Timeout[] = [];

async function serve(node: SimNode): Promise<void> {
  // The first poll waits a random share of the full wait, so the fleet's polls do not return together.
  let wait = 1 + Math.floor(Math.random() * POLL_WAIT_SECONDS);
  while (!stopped) {
    try {
      await node.serveOnce(wait);
    } catch {
      if (!stopped) await new Promise((r) => setTimeout(r, 50));
    }
    wait = POLL_WAIT_SECONDS;
  }
}

process.on('message', (m: HostToAgents) => {
  if (m.type === 'start') {
    void (async () => {
      const collectors = await fixtureCollectors(m.hardware);
      for (const n of m.nodes) {
        const node = new SimNode(m.url, n.name, collectors, m.hardware.kind === 'jetson', { runMs: 0 });
        Object.assign(node, { nodeId: n.nodeId, token: n.token, heartbeatIntervalSeconds: n.interval });
        for (const [model, instanceId] of n.servers) node.servers.set(model, instanceId);
        nodes.push(node);
        const beatMs = n.interval * 1000;
        const beat = () => void node.heartbeat().catch(() => undefined);
        timers.push(setTimeout(() => timers.push(setInterval(beat, beatMs)), Math.random() * beatMs));
        void serve(node);
      }
      timers.push(
        setInterval(() => {
          const finished = nodes.reduce((s, n) => s + n.finished, 0);
          if (finished !== reported) send({ type: 'finished', total: (reported = finished) });
        }, 5),
      );
      send({ type: 'ready' });
    })();
  } else {
    stopped = true;
    for (const t of timers) clearTimeout(t);
    // Polls still in flight end with the process, once the host has the node's model servers.
    process.send!(
      { type: 'stopped', servers: nodes.map((n) => [...n.servers.entries()]) } satisfies AgentsToHost,
      undefined,
      {},
      () => process.exit(0),
    );
  }
});
