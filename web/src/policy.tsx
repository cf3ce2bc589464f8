import { Empty, Section } from './ui.js';

/** A node's own policy as GET /api/nodes/ shows it (issue 11); null: its agent reports none. */
export interface NodePolicy {
  allow_host_paths: string[];
  allow_engine_socket: boolean;
  allow_privileged: boolean;
  allow_host_network: boolean;
  allow_host_pid: boolean;
  allow_capabilities: string[];
  /** Null: an agent that does not say. */
  allow_exec?: boolean | null;
}

interface Rule {
  rule: string;
  allowed: boolean;
  detail: string;
  /** How the node's owner changes it (the agent's flag and env). */
  how: string;
}

/** Each rule, in words, with what it allows and the agent option that changes it. */
export function policyRules(p: NodePolicy): Rule[] {
  const flag = (allowed: boolean, name: string, env: string) =>
    allowed ? `set on the node (--${name})` : `the node owner allows it with --${name} (${env}=true)`;
  return [
    {
      rule: 'Privileged containers',
      allowed: p.allow_privileged,
      detail: p.allow_privileged ? 'allowed' : 'refused',
      how: flag(p.allow_privileged, 'allow-privileged', 'FLEET_ALLOW_PRIVILEGED'),
    },
    {
      rule: 'Host folder mounts',
      allowed: p.allow_host_paths.length > 0,
      detail: p.allow_host_paths.length ? `only under ${p.allow_host_paths.join(', ')}` : 'none',
      how: 'the node owner lists folders with --allow-host-paths (FLEET_ALLOW_HOST_PATHS)',
    },
    {
      rule: 'Engine socket mount',
      allowed: p.allow_engine_socket,
      detail: p.allow_engine_socket ? 'allowed (whoever holds it owns the host)' : 'refused',
      how: flag(p.allow_engine_socket, 'allow-engine-socket', 'FLEET_ALLOW_ENGINE_SOCKET'),
    },
    {
      rule: 'Host network',
      allowed: p.allow_host_network,
      detail: p.allow_host_network ? 'allowed' : 'refused',
      how: flag(p.allow_host_network, 'allow-host-network', 'FLEET_ALLOW_HOST_NETWORK'),
    },
    {
      rule: 'Host PID namespace',
      allowed: p.allow_host_pid,
      detail: p.allow_host_pid ? 'allowed' : 'refused',
      how: flag(p.allow_host_pid, 'allow-host-pid', 'FLEET_ALLOW_HOST_PID'),
    },
    {
      rule: 'Added capabilities',
      allowed: p.allow_capabilities.length > 0,
      detail: p.allow_capabilities.length ? p.allow_capabilities.join(', ') : 'none',
      how: 'the node owner lists them with --allow-capabilities (FLEET_ALLOW_CAPABILITIES)',
    },
    ...(typeof p.allow_exec === 'boolean'
      ? [
          {
            rule: 'Host commands (exec)',
            allowed: p.allow_exec,
            detail: p.allow_exec ? 'allowed' : 'refused',
            how: flag(p.allow_exec, 'allow-exec', 'FLEET_ALLOW_EXEC'),
          },
        ]
      : []),
  ];
}

export function PolicySection({ policy }: { policy: NodePolicy | null | undefined }) {
  return (
    <Section title="Policy">
      {policy ? (
        <>
          <p class="small muted">
            Set by the node’s owner on the node; the control plane places only what it allows.
          </p>
          <table data-testid="policy">
            <thead>
              <tr>
                <th scope="col">What</th>
                <th scope="col">Here</th>
                <th scope="col">Changed by</th>
              </tr>
            </thead>
            <tbody>
              {policyRules(policy).map((r) => (
                <tr key={r.rule} data-allowed={String(r.allowed)}>
                  <th scope="row">{r.rule}</th>
                  <td>
                    <span class={`status status-${r.allowed ? 'ok' : 'error'}`}>{r.detail}</span>
                  </td>
                  <td class="small">{r.how}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : (
        <Empty text="Its agent reports no policy (an older agent): it judges each start itself." />
      )}
    </Section>
  );
}

/** Where engines keep their API socket (protocol/policy.ts): mounting one hands over the host. */
const ENGINE_SOCKETS = [
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/podman/podman.sock',
  '/var/run/podman/podman.sock',
  '/run/containerd/containerd.sock',
];

/** `/a/./b/../c/` → `/a/c`. */
function normalise(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
const under = (path: string, root: string) =>
  path === root || path.startsWith(root === '/' ? '/' : `${root}/`);

/**
 * Why this node's policy refuses mounting the host folder `source`, as the agent would
 * (protocol/policy.ts policyRefusal); undefined when it allows it or reports no policy.
 */
export function mountRefusal(source: string, policy: NodePolicy | null | undefined): string | undefined {
  const path = normalise(source);
  if (path === '/') return "mounting the host's root folder / is never allowed";
  if (!policy) return undefined;
  if (ENGINE_SOCKETS.some((s) => under(s, path)))
    return policy.allow_engine_socket ? undefined : `mounting the engine socket (${path}) is not allowed`;
  if (policy.allow_host_paths.some((root) => under(path, normalise(root)))) return undefined;
  return `${path} is outside the folders it allows (${policy.allow_host_paths.join(', ') || 'none'})`;
}
