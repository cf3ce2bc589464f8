import { describe, expect, it } from 'vitest';
import {
  parseConstraint,
  satisfies,
  type Constraint,
  type NodeFacts,
} from '../../../functions/orchestrator/constraints.js';
import { planReconcile, type PlanInput, type PlanNode } from '../../../functions/orchestrator/plan.js';

const facts = (id: string, labels: Record<string, string>, arch = 'arm64'): NodeFacts => ({
  id,
  hostname: id,
  labels,
  arch,
  os: 'linux',
});
const node = (id: string, labels: Record<string, string>, arch?: string): PlanNode => ({
  id,
  online: true,
  capacity: { cpu: 4, memoryMb: 8192, diskGb: 0, gpus: 0 },
  facts: facts(id, labels, arch),
});
const parsed = (...texts: string[]) => texts.map((t) => parseConstraint(t) as Constraint);
const NOW = 1_000_000;
const base: PlanInput = { now: NOW, nodes: [], services: [], slots: [], instances: [] };

describe('placement constraints', () => {
  it('parses the Swarm forms and refuses anything else with a reason', () => {
    expect(parseConstraint('node.labels.cluster==vision')).toEqual({
      field: 'labels.cluster',
      op: '==',
      value: 'vision',
    });
    expect(parseConstraint(' node.hostname != agx1 ')).toEqual({
      field: 'hostname',
      op: '!=',
      value: 'agx1',
    });
    expect(parseConstraint('node.platform.arch==aarch64')).toEqual({
      field: 'platform.arch',
      op: '==',
      value: 'aarch64',
    });
    expect(parseConstraint('labels.cluster==vision')).toMatch(/expected node\./);
    expect(parseConstraint('node.colour==red')).toMatch(/unknown field node\.colour/);
    expect(parseConstraint('node.labels.a=b')).toMatch(/expected/);
  });

  it('checks every constraint: == needs the value, != its absence or another value', () => {
    const n = facts('agx0', { cluster: 'vision', nvidia: 'true' });
    expect(satisfies(n, parsed('node.labels.cluster==vision', 'node.labels.nvidia==true'))).toBe(true);
    expect(satisfies(n, parsed('node.labels.cluster==vision', 'node.hostname!=agx0'))).toBe(false);
    expect(satisfies(n, parsed('node.labels.zone!=eu'))).toBe(true);
    expect(satisfies(n, parsed('node.labels.zone==eu'))).toBe(false);
    expect(satisfies(n, parsed('node.role==worker'))).toBe(true);
  });

  it('places only on nodes meeting the constraints, and says so when none does', () => {
    // Prepare
    const nodes = [node('a', {}), node('b', { cluster: 'vision' }), node('c', { cluster: 'vision' })];
    const svc = {
      imageId: 'sdxl',
      desiredCount: 3,
      reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 },
      constraints: parsed('node.labels.cluster==vision'),
    };
    // Act
    const plan = planReconcile({ ...base, nodes, services: [svc] });
    const none = planReconcile({
      ...base,
      nodes,
      services: [{ ...svc, constraints: parsed('node.labels.cluster==edge') }],
    });
    // Assess
    const targets = plan.actions.map((a) => (a.type === 'place' ? a.nodeId : a.type));
    expect(targets.sort()).toEqual(['b', 'b', 'c']);
    expect(none.actions).toEqual([]);
    expect(none.unplaced.map((u) => u.reason)).toEqual(
      Array(3).fill('no online node satisfies the placement constraints'),
    );
  });

  it('moves a copy off a node whose labels no longer meet the constraints, keeping it while nowhere else fits', () => {
    // Prepare: the copy runs on a, which lost its label.
    const svc = {
      imageId: 'sdxl',
      desiredCount: 1,
      reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 },
      constraints: parsed('node.labels.cluster==vision'),
    };
    const running = {
      slots: [{ imageId: 'sdxl', ordinal: 0, instanceId: 'i1', nodeId: 'a', claimedAt: NOW - 60_000 }],
      instances: [
        { instanceId: 'i1', imageId: 'sdxl', nodeId: 'a', status: 'running' as const, reserve: svc.reserve },
      ],
    };
    // Act
    const moved = planReconcile({
      ...base,
      ...running,
      nodes: [node('a', {}), node('b', { cluster: 'vision' })],
      services: [svc],
    });
    const stuck = planReconcile({ ...base, ...running, nodes: [node('a', {})], services: [svc] });
    // Assess
    expect(moved.actions).toEqual([
      { type: 'place', imageId: 'sdxl', ordinal: 0, nodeId: 'b', replaces: 'i1' },
      { type: 'retire', imageId: 'sdxl', instanceId: 'i1', nodeId: 'a', from: 'running' },
    ]);
    expect(stuck.actions).toEqual([]);
  });
});
