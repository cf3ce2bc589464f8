/**
 * The set-up the burst suites share: the local runtime with the loopback Novita double (each rented
 * instance's startup command runs the real agent bundle as a local process group), and one fleet
 * node (a real agent, process driver). Rented instances are told the control plane's URL
 * (INSTALL_CONTROL_PLANE_URL), so its port is chosen first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startNovitaRig, type NovitaRig } from '../integration/novita/harness.js';
import { AgentProcess, buildAgentBundle } from '../e2e/harness.js';
import { freePort } from './free-port.js';

/** A rented instance's agent: its image has a shell, curl and a node runtime on PATH; its home under `root`. */
export function rentedAgentEnv(root: string, novitaId: string): Record<string, string> {
  return {
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    HOME: root,
    FLEET_AGENT_HOME: join(root, 'instances', novitaId),
    FLEET_HEARTBEAT: '1',
  };
}

export interface BurstRig {
  rig: NovitaRig;
  /** The suite's temporary folder: agent homes, the bundle, whatever the suite adds. */
  root: string;
  fleet: AgentProcess;
  fleetNode: string;
  stop(): Promise<void>;
}

export interface BurstRigOptions {
  /** The temporary folder's name prefix. */
  prefix: string;
  /** Settings of the runtime, besides the install URL and assets. */
  env: Record<string, string>;
  /** Called once the root exists, before anything starts (folders the suite needs). */
  prepare?: (root: string) => Promise<void>;
  /** More environment for each rented instance's agent. */
  instanceEnv?: (root: string, novitaId: string) => Record<string, string>;
  /** More environment for the fleet node's agent. */
  fleetEnv?: (root: string) => Record<string, string>;
  /** Called once the runtime runs, before the fleet node starts (settings overrides). */
  configure?: (rig: NovitaRig, root: string) => void;
}

export async function startBurstRig(options: BurstRigOptions): Promise<BurstRig> {
  const root = await mkdtemp(join(tmpdir(), options.prefix));
  let rig: NovitaRig | undefined;
  let fleet: AgentProcess | undefined;
  const stop = async () => {
    await fleet?.kill('SIGKILL');
    for (const id of [...(rig?.fake.processes.keys() ?? [])]) rig?.fake.kill(id);
    await rig?.stop();
    // Killed agents may still be writing a moment: retried.
    await rm(root, { recursive: true, force: true, maxRetries: 5 });
  };
  try {
    await options.prepare?.(root);
    const assets = join(root, 'assets');
    await buildAgentBundle(join(assets, 'agent.mjs'));
    const port = await freePort();
    rig = await startNovitaRig(
      { INSTALL_CONTROL_PLANE_URL: `http://127.0.0.1:${port}`, INSTALL_ASSETS_DIR: assets, ...options.env },
      { port },
    );
    options.configure?.(rig, root);
    rig.fake.runStartup = {
      env: (id) => ({ ...rentedAgentEnv(root, id), ...options.instanceEnv?.(root, id) }),
    };
    fleet = new AgentProcess({
      url: rig.rt.url,
      name: 'fleet-a',
      stateDir: join(root, 'fleet-a'),
      heartbeatSeconds: 1,
      env: { ...process.env, FLEET_API_KEY: '', FLEET_DRIVER: 'process', ...options.fleetEnv?.(root) },
    });
    const fleetNode = await fleet.start();
    return { rig, root, fleet, fleetNode, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
