import { describe, expect, it } from 'vitest';
import { containerSpec, type ContainerSpec } from '../../../protocol/commands.js';
import { checkSpec, DEFAULT_POLICY, NodePolicyError, type NodePolicy } from '../../../agent/policy.js';

const spec = (overrides: Partial<ContainerSpec> = {}): ContainerSpec =>
  containerSpec.parse({ instanceId: 'i', imageId: 'img', name: 'n', kind: 'service', ...overrides });
const mount = (hostPath: string) => ({ volumes: [{ hostPath, containerPath: '/m', readOnly: false }] });
const refusal = (s: ContainerSpec, policy: NodePolicy = DEFAULT_POLICY, socket?: string) => {
  try {
    checkSpec(s, policy, socket);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(NodePolicyError);
    return { rule: (error as NodePolicyError).rule, message: (error as Error).message };
  }
};

describe('node policy', () => {
  it('lets a plain container and the checkpoint folder through by default', () => {
    expect(refusal(spec())).toBeNull();
    expect(refusal(spec(mount('/var/lib/fleet/checkpoints/job-1')))).toBeNull();
  });

  it.each([
    ['/', 'host-paths', /never allowed/],
    ['/etc/../', 'host-paths', /never allowed/],
    ['/var/run/docker.sock', 'engine-socket', /--allow-engine-socket/],
    ['/run', 'engine-socket', /engine socket/],
    ['/home/op', 'host-paths', /--allow-host-paths/],
    ['/var/lib/fleet/checkpoints-evil', 'host-paths', /outside the folders/],
    ['/var/lib/fleet/checkpoints/../models', 'host-paths', /\/var\/lib\/fleet\/models is outside/],
  ])('refuses a bind mount of %s (%s)', (path, rule, message) => {
    const r = refusal(spec(mount(path)));
    expect(r?.rule).toBe(rule);
    expect(r?.message).toMatch(message);
    expect(r?.message).toMatch(/^refused by this node's policy/);
  });

  it("refuses the socket of the agent's own engine, wherever it is", () => {
    expect(
      refusal(
        spec(mount('/tmp/fleet-engine.sock')),
        { ...DEFAULT_POLICY, allowHostPaths: ['/tmp'] },
        '/tmp/fleet-engine.sock',
      )?.rule,
    ).toBe('engine-socket');
  });

  it.each([
    [{ privileged: true }, 'privileged', /--allow-privileged/],
    [{ network: 'host' as const }, 'host-network', /--allow-host-network/],
    [{ pid: 'host' as const }, 'host-pid', /--allow-host-pid/],
    [{ capAdd: ['cap_sys_admin'] }, 'capabilities', /SYS_ADMIN.*--allow-capabilities SYS_ADMIN/],
  ])('refuses %o unless allowed', (ask, rule, message) => {
    const r = refusal(spec(ask));
    expect(r?.rule).toBe(rule);
    expect(r?.message).toMatch(message);
  });

  it('allows what the node owner allowed, and only that', () => {
    const owner: NodePolicy = {
      allowHostPaths: ['/data'],
      allowEngineSocket: true,
      allowPrivileged: true,
      allowHostNetwork: true,
      allowHostPid: true,
      allowCapabilities: ['NET_ADMIN'],
    };
    expect(
      refusal(
        spec({
          ...mount('/data/models'),
          privileged: true,
          network: 'host',
          pid: 'host',
          capAdd: ['CAP_NET_ADMIN'],
        }),
        owner,
      ),
    ).toBeNull();
    expect(refusal(spec(mount('/var/run/docker.sock')), owner)).toBeNull();
    expect(refusal(spec(mount('/')), { ...owner, allowHostPaths: ['/'] })?.rule).toBe('host-paths');
    expect(refusal(spec({ capAdd: ['SYS_ADMIN'] }), owner)?.rule).toBe('capabilities');
    expect(refusal(spec({ capAdd: ['SYS_ADMIN'] }), { ...owner, allowCapabilities: ['ALL'] })).toBeNull();
  });
});
