import type { ContainerSpec } from '../../protocol/commands.js';
import type { PolicySubject } from '../../protocol/policy.js';

/** What a run reserves on its node, in the orchestrator's planning units. */
export interface RunAsk {
  gpus: number;
  cpu: number;
  memoryMb: number;
  diskGb: number;
}

/** What about the start decides where it can run: a process node runs only runs that give a command. */
export interface RunStart {
  command?: readonly string[] | undefined;
  /** Only this node (by name) may take it: a burst job's own rented node. */
  onlyNodeName?: string;
  /** The container it starts, judged against each node's own policy. */
  spec?: PolicySubject;
}

export type Placement = { nodeId: string } | { reason: string };

/**
 * How training reaches the fleet: node choice and command dispatch, nothing else. The domain
 * depends on this interface only, so tests and the bench put their own in front of the fleet.
 */
export interface RunLauncher {
  /**
   * An online node with the free capacity asked that can run `start` (its driver, its own policy
   * for `start.spec`, its pin); nodes in `avoid` only when nothing else fits.
   */
  choose(ask: RunAsk, avoid: readonly string[], start?: RunStart): Promise<Placement>;
  /**
   * Why no node that could take `spec` now would run it (each one's own policy refuses it), or
   * undefined when one would or none can be judged yet. Launchers that cannot tell omit it.
   */
  refusal?(spec: PolicySubject): Promise<string | undefined>;
  /**
   * Sends container.start once per commandId. Called again for the same id (a redelivered
   * event, the repair sweep) it sends nothing new, unless `resendPendingOlderThanMs` says the
   * first send looks lost: the agent executes a command id at most once, so a resend is safe.
   */
  start(
    nodeId: string,
    spec: ContainerSpec,
    commandId: string,
    resendPendingOlderThanMs?: number,
  ): Promise<void>;
  /** Removes a run's container; queued until the node is back when it is away. */
  remove(nodeId: string, instanceId: string): Promise<void>;
  /** Whether the node still heartbeats. */
  alive(nodeId: string): Promise<boolean>;
  /**
   * Whether the run's container is known to be gone from its node (removed behind the agent, the
   * engine's state lost): its start succeeded, yet a heartbeat sent well after lists no container
   * of it, so no exit will ever be reported. False while unsure. Launchers that cannot tell omit it.
   */
  gone?(nodeId: string, instanceId: string, commandId: string): Promise<boolean>;
}
