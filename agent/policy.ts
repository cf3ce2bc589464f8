import { statSync } from 'node:fs';
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import type { ContainerSpec } from '../protocol/commands.js';

/**
 * What this node lets the control plane run, set by the node's owner on the node (flags, env, the
 * agent's config file) and never by a command: an API key reaches every node, so nothing it sends
 * may widen this. Everything is off unless allowed.
 */
export interface NodePolicy {
  /** Host folders that may be bind-mounted, with what lies under them. */
  allowHostPaths: string[];
  /** The engine's own socket may be mounted (whoever holds it owns the host). */
  allowEngineSocket: boolean;
  allowPrivileged: boolean;
  allowHostNetwork: boolean;
  allowHostPid: boolean;
  /** Capabilities a container may add (`ALL` allows any). */
  allowCapabilities: string[];
}

/** The training checkpoint root the control plane mounts by default (TRAINING_CHECKPOINT_ROOT). */
export const DEFAULT_ALLOWED_HOST_PATHS = ['/var/lib/fleet/checkpoints'];

export const DEFAULT_POLICY: NodePolicy = {
  allowHostPaths: DEFAULT_ALLOWED_HOST_PATHS,
  allowEngineSocket: false,
  allowPrivileged: false,
  allowHostNetwork: false,
  allowHostPid: false,
  allowCapabilities: [],
};

/** Where engines keep their API socket; mounting any of them hands over the host. */
const ENGINE_SOCKETS = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/podman/podman.sock',
  '/var/run/podman/podman.sock',
  '/run/containerd/containerd.sock',
];

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

const under = (path: string, root: string) =>
  path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);

/** The engine socket of DOCKER_HOST, when it is a unix socket. */
export function engineSocketOf(dockerHost: string | undefined): string | undefined {
  if (!dockerHost) return undefined;
  if (dockerHost.startsWith('unix://')) return dockerHost.slice('unix://'.length);
  return dockerHost.startsWith('/') ? dockerHost : undefined;
}

/**
 * Throws NodePolicyError for the first thing in `spec` the policy does not allow. `engineSocket`
 * is the socket this agent drives (from DOCKER_HOST), refused like the well-known ones.
 */
export function checkSpec(spec: ContainerSpec, policy: NodePolicy, engineSocket?: string): void {
  if (spec.privileged && !policy.allowPrivileged)
    throw new NodePolicyError(
      'privileged',
      'privileged containers are not allowed; the node owner allows them with --allow-privileged (FLEET_ALLOW_PRIVILEGED=true)',
    );
  if (spec.network === 'host' && !policy.allowHostNetwork)
    throw new NodePolicyError(
      'host-network',
      "the host's network namespace is not allowed; the node owner allows it with --allow-host-network (FLEET_ALLOW_HOST_NETWORK=true)",
    );
  if (spec.pid === 'host' && !policy.allowHostPid)
    throw new NodePolicyError(
      'host-pid',
      "the host's PID namespace is not allowed; the node owner allows it with --allow-host-pid (FLEET_ALLOW_HOST_PID=true)",
    );
  const allowedCaps = new Set(policy.allowCapabilities.map(capName));
  for (const cap of spec.capAdd ?? []) {
    if (allowedCaps.has('ALL') || allowedCaps.has(capName(cap))) continue;
    throw new NodePolicyError(
      'capabilities',
      `adding capability ${capName(cap)} is not allowed; the node owner allows it with --allow-capabilities ${capName(cap)} (FLEET_ALLOW_CAPABILITIES)`,
    );
  }
  const sockets = [...ENGINE_SOCKETS, ...(engineSocket ? [engineSocket] : [])].map((s) => normalize(s));
  for (const v of spec.volumes) {
    if (!isAbsolute(v.hostPath))
      throw new NodePolicyError('host-paths', `host path ${v.hostPath} is not absolute`);
    const path = resolve(v.hostPath);
    if (path === sep)
      throw new NodePolicyError(
        'host-paths',
        "mounting the host's root folder / is never allowed: it hands over the host",
      );
    // Any unix socket counts: the engine's may sit anywhere (a proxy, a rootless Podman).
    if (sockets.some((s) => under(s, path)) || isSocket(path)) {
      if (policy.allowEngineSocket) continue;
      throw new NodePolicyError(
        'engine-socket',
        `mounting the engine socket (${path}) is not allowed: whoever holds it owns the host; the node owner allows it with --allow-engine-socket (FLEET_ALLOW_ENGINE_SOCKET=true)`,
      );
    }
    if (policy.allowHostPaths.some((root) => under(path, resolve(root)))) continue;
    throw new NodePolicyError(
      'host-paths',
      `host path ${path} is outside the folders this node allows (${policy.allowHostPaths.join(', ') || 'none'}); the node owner adds it with --allow-host-paths (FLEET_ALLOW_HOST_PATHS)`,
    );
  }
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false; // not there (yet): the folder rules decide
  }
}

/** `sys_admin`, `CAP_SYS_ADMIN` → `SYS_ADMIN`. */
function capName(cap: string): string {
  return cap.toUpperCase().replace(/^CAP_/, '');
}
