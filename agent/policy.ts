import { statSync } from 'node:fs';
import type { ContainerSpec } from '../protocol/commands.js';
import { policyRefusal, type NodePolicy } from '../protocol/policy.js';

/**
 * This node's policy, enforced here whatever the control plane sent: an API key reaches every
 * node, so nothing it sends may widen it. The rules themselves are the wire contract's
 * (protocol/policy.ts), so the control plane judges a spec the same way before it queues one.
 */
export { DEFAULT_ALLOWED_HOST_PATHS, DEFAULT_POLICY, type NodePolicy } from '../protocol/policy.js';

/** A command the node's policy does not allow: names the rule and how the node's owner would allow it. */
export class NodePolicyError extends Error {
  override name = 'NodePolicyError';
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(`refused by this node's policy (${rule}): ${message}`);
  }
}

/** The engine socket of DOCKER_HOST, when it is a unix socket. */
export function engineSocketOf(dockerHost: string | undefined): string | undefined {
  if (!dockerHost) return undefined;
  if (dockerHost.startsWith('unix://')) return dockerHost.slice('unix://'.length);
  return dockerHost.startsWith('/') ? dockerHost : undefined;
}

/**
 * Throws NodePolicyError for the first thing in `spec` the policy does not allow. `engineSocket`
 * is the socket this agent drives (from DOCKER_HOST), refused like the well-known ones; any other
 * unix socket on this host is refused too.
 */
export function checkSpec(spec: ContainerSpec, policy: NodePolicy, engineSocket?: string): void {
  const refusal = policyRefusal(spec, policy, { engineSocket, isSocket });
  if (refusal) throw new NodePolicyError(refusal.rule, refusal.message);
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false; // not there (yet): the folder rules decide
  }
}
