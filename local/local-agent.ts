import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { runAgent } from '../agent/agent.js';
import { loadConfig as loadAgentConfig } from '../agent/config.js';

/** Where an engine would be, the Docker way: DOCKER_HOST, else the default socket. */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_HOST) return env.DOCKER_HOST;
  return existsSync('/var/run/docker.sock') ? 'unix:///var/run/docker.sock' : undefined;
}

/**
 * Starts the agent for this machine inside the `npm start` process, when a container engine
 * answers. Returns a stop function, or a reason it did not start.
 */
export async function startLocalAgent(
  url: string,
  stateRoot: string,
): Promise<{ stop: () => Promise<void> } | { reason: string }> {
  const endpoint = engineEndpoint();
  if (!endpoint) return { reason: 'no container engine (set DOCKER_HOST or start Docker)' };
  const docker = new Docker();
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 3 s')), 3000)),
    ]);
  } catch (error) {
    return { reason: `container engine at ${endpoint} does not answer: ${(error as Error).message}` };
  }
  const parsed = loadAgentConfig(['--url', url, '--state-dir', join(stateRoot, 'agent')], process.env);
  if (parsed.kind !== 'run') return { reason: 'agent configuration' };
  const controller = new AbortController();
  const done = runAgent(parsed.config, controller.signal, { docker });
  return {
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}
