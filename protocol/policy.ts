import { posix } from 'node:path';
import * as z from 'zod';
import type { ContainerSpec } from './commands.js';

/**
 * What a node lets the control plane run, set by the node's owner on the node (flags, env, the
 * agent's config file) and never by a command. The agent enforces it on every start
 * (agent/policy.ts) and reports it at registration, so the control plane refuses up front what
 * no node would run and places work only where it is allowed. Everything is off unless allowed.
 */
export const nodePolicy = z.object({
  /** Host folders that may be bind-mounted, with what lies under them. */
  allowHostPaths: z.array(z.string().min(1).max(4096)).max(256),
  /** The engine's own socket may be mounted (whoever holds it owns the host). */
  allowEngineSocket: z.boolean(),
  allowPrivileged: z.boolean(),
  allowHostNetwork: z.boolean(),
  allowHostPid: z.boolean(),
  /** Capabilities a container may add (`ALL` allows any). */
  allowCapabilities: z.array(z.string().max(64)).max(64),
});
export type NodePolicy = z.infer<typeof nodePolicy>;

/** The policy as the agent reports it: the rules, plus the socket of the engine it drives. */
export const reportedPolicy = nodePolicy.extend({
  engineSocket: z.string().max(4096).optional(),
  /** The node's own checkpoint root (FLEET_CHECKPOINT_ROOT): a run's checkpoint folder is `<it>/<job_id>` there. */
  checkpointRoot: z.string().max(4096).optional(),
  /** Host commands (host.exec) run here: the agent's --allow-exec. Absent from older agents. */
  allowExec: z.boolean().optional(),
});
export type ReportedPolicy = z.infer<typeof reportedPolicy>;

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

/** The rule a spec breaks and how the node's owner would allow it. */
export interface PolicyRefusal {
  rule: 'privileged' | 'host-network' | 'host-pid' | 'capabilities' | 'host-paths' | 'engine-socket';
  message: string;
}

/** What of a container spec the policy rules on. */
export type PolicySubject = Pick<ContainerSpec, 'privileged' | 'network' | 'pid' | 'capAdd'> & {
  volumes: readonly { hostPath: string; containerPath?: string }[];
  /** A training run's checkpoint folder: a node with a checkpoint root of its own mounts it there. */
  checkpoint?: { jobId: string; containerPath: string } | undefined;
};

export interface PolicyCheckOptions {
  /** The socket the node's agent drives, refused like the well-known ones. */
  engineSocket?: string | undefined;
  /** Whether a host path is a unix socket (the agent can look; the control plane cannot). */
  isSocket?: (path: string) => boolean;
}

const under = (path: string, root: string) =>
  path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);

/** `sys_admin`, `CAP_SYS_ADMIN` → `SYS_ADMIN`. */
const capName = (cap: string) => cap.toUpperCase().replace(/^CAP_/, '');

/** The first thing in `spec` the policy does not allow, or undefined when it allows all of it. */
export function policyRefusal(
  spec: PolicySubject,
  policy: NodePolicy,
  options: PolicyCheckOptions = {},
): PolicyRefusal | undefined {
  if (spec.privileged && !policy.allowPrivileged)
    return {
      rule: 'privileged',
      message:
        'privileged containers are not allowed; the node owner allows them with --allow-privileged (FLEET_ALLOW_PRIVILEGED=true)',
    };
  if (spec.network === 'host' && !policy.allowHostNetwork)
    return {
      rule: 'host-network',
      message:
        "the host's network namespace is not allowed; the node owner allows it with --allow-host-network (FLEET_ALLOW_HOST_NETWORK=true)",
    };
  if (spec.pid === 'host' && !policy.allowHostPid)
    return {
      rule: 'host-pid',
      message:
        "the host's PID namespace is not allowed; the node owner allows it with --allow-host-pid (FLEET_ALLOW_HOST_PID=true)",
    };
  const allowedCaps = new Set(policy.allowCapabilities.map(capName));
  for (const cap of spec.capAdd ?? []) {
    if (allowedCaps.has('ALL') || allowedCaps.has(capName(cap))) continue;
    return {
      rule: 'capabilities',
      message: `adding capability ${capName(cap)} is not allowed; the node owner allows it with --allow-capabilities ${capName(cap)} (FLEET_ALLOW_CAPABILITIES)`,
    };
  }
  const sockets = [...ENGINE_SOCKETS, ...(options.engineSocket ? [options.engineSocket] : [])].map((s) =>
    posix.normalize(s),
  );
  for (const v of spec.volumes) {
    if (!posix.isAbsolute(v.hostPath))
      return { rule: 'host-paths', message: `host path ${v.hostPath} is not absolute` };
    const path = posix.resolve(v.hostPath);
    if (path === '/')
      return {
        rule: 'host-paths',
        message: "mounting the host's root folder / is never allowed: it hands over the host",
      };
    // Any unix socket counts: the engine's may sit anywhere (a proxy, a rootless Podman).
    if (sockets.some((s) => under(s, path)) || options.isSocket?.(path)) {
      if (policy.allowEngineSocket) continue;
      return {
        rule: 'engine-socket',
        message: `mounting the engine socket (${path}) is not allowed: whoever holds it owns the host; the node owner allows it with --allow-engine-socket (FLEET_ALLOW_ENGINE_SOCKET=true)`,
      };
    }
    if (policy.allowHostPaths.some((root) => under(path, posix.resolve(root)))) continue;
    return {
      rule: 'host-paths',
      message: `host path ${path} is outside the folders this node allows (${policy.allowHostPaths.join(', ') || 'none'}); the node owner adds it with --allow-host-paths (FLEET_ALLOW_HOST_PATHS)`,
    };
  }
  return undefined;
}
