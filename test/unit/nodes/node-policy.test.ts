import { describe, expect, it } from 'vitest';
import { policyRefusalOn, refusalAcross, refuseUnlessAllowed } from '../../../functions/nodes/node-policy.js';
import { HttpError } from '../../../functions/core/errors.js';
import { DEFAULT_POLICY, type ReportedPolicy } from '../../../protocol/policy.js';

const strict: ReportedPolicy = { ...DEFAULT_POLICY, engineSocket: '/srv/engine/api.sock' };
const open: ReportedPolicy = { ...DEFAULT_POLICY, allowHostPaths: ['/data'] };
const mount = (hostPath: string) => ({ volumes: [{ hostPath }] });

describe("the control plane's reading of node policies", () => {
  it('judges a spec by the rules the agent enforces, its own engine socket included', () => {
    expect(policyRefusalOn({ policy: open }, mount('/data/set-1'))).toBeUndefined();
    expect(policyRefusalOn({ policy: strict }, mount('/data/set-1'))).toMatch(
      /^refused by this node's policy \(host-paths\): host path \/data\/set-1 is outside .*--allow-host-paths/,
    );
    expect(policyRefusalOn({ policy: strict }, mount('/srv/engine/api.sock'))).toMatch(/\(engine-socket\)/);
    expect(policyRefusalOn({ policy: open }, mount('/data/../'))).toMatch(/root folder \/ is never allowed/);
    expect(policyRefusalOn({ policy: strict }, { privileged: true, volumes: [] })).toMatch(/\(privileged\)/);
  });

  it('leaves a node that reported no policy to judge for itself', () => {
    expect(policyRefusalOn({}, mount('/'))).toBeUndefined();
    expect(refusalAcross([{ nodeName: 'old' }, { nodeName: 's', policy: strict }], mount('/'), 'x')).toBe(
      undefined,
    );
  });

  it('refuses only when every candidate refuses, naming each node with its reason', () => {
    expect(refusalAcross([], mount('/etc'), 'svc')).toBeUndefined();
    expect(
      refusalAcross(
        [
          { nodeName: 's', policy: strict },
          { nodeName: 'o', policy: open },
        ],
        mount('/data'),
        'svc',
      ),
    ).toBeUndefined();
    const both = [
      { nodeName: 's1', policy: strict },
      { nodeName: 's2', policy: strict },
      { nodeName: 'o', policy: open },
    ];
    const message = refusalAcross(both, mount('/etc'), 'svc')!;
    expect(message).toMatch(
      /^No node that could run svc allows it: s1, s2: refused .*; o: refused .*Nothing was kept$/,
    );
    expect(message).toContain('(/var/lib/fleet/checkpoints)');
    expect(message).toContain('(/data)');
    try {
      refuseUnlessAllowed(both, mount('/etc'), 'svc');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(HttpError);
      expect(error).toMatchObject({ status: 422, code: 'START_REFUSED', message });
    }
  });
});
