import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  OCCUPYING,
  globalCount,
  planReconcile,
  type InstanceStatus,
  type Plan,
  type PlanInput,
  type PlanInstance,
  type PlanNode,
  type PlanService,
  type PlanSlot,
} from '../../../functions/orchestrator/plan.js';
import type { Reservation } from '../../../functions/orchestrator/resources.js';

const NOW = 1_000_000;
const res = (cpu = 0, memoryMb = 0, gpus = 0, diskGb = 0): Reservation => ({ cpu, memoryMb, diskGb, gpus });
const node = (id: string, capacity = res(4, 8192), online = true): PlanNode => ({ id, online, capacity });
const service = (imageId: string, desiredCount: number, reserve = res(), nodeId?: string): PlanService => ({
  imageId,
  desiredCount,
  reserve,
  ...(nodeId ? { nodeId } : {}),
});
const slot = (
  imageId: string,
  ordinal: number,
  instanceId: string,
  nodeId: string,
  claimedAt = NOW - 60_000,
): PlanSlot => ({
  imageId,
  ordinal,
  instanceId,
  nodeId,
  claimedAt,
});
const inst = (
  instanceId: string,
  imageId: string,
  nodeId: string,
  status: InstanceStatus = 'running',
  reserve = res(),
): PlanInstance => ({
  instanceId,
  imageId,
  nodeId,
  status,
  reserve,
});
const input = (p: Partial<PlanInput>): PlanInput => ({
  now: NOW,
  nodes: [],
  services: [],
  slots: [],
  instances: [],
  ...p,
});
const of = (plan: Plan, type: string) => plan.actions.filter((a) => a.type === type);

describe('planReconcile', () => {
  it('places missing copies at the lowest ordinals, least loaded node first, spreading copies', () => {
    // Prepare
    const nodes = [node('a'), node('b'), node('c')];
    // Act
    const plan = planReconcile(input({ nodes, services: [service('nginx:alpine', 3, res(1, 512))] }));
    // Assess
    expect(plan.actions).toEqual([
      { type: 'place', imageId: 'nginx:alpine', ordinal: 0, nodeId: 'a' },
      { type: 'place', imageId: 'nginx:alpine', ordinal: 1, nodeId: 'b' },
      { type: 'place', imageId: 'nginx:alpine', ordinal: 2, nodeId: 'c' },
    ]);
    expect(plan.unplaced).toEqual([]);
  });

  it('prefers the node with the lowest reserved fraction, counting other images', () => {
    const nodes = [node('a', res(4, 8192)), node('b', res(4, 8192))];
    const instances = [inst('x1', 'other', 'a', 'running', res(3, 1024))];
    const plan = planReconcile(input({ nodes, services: [service('web', 2, res(1, 1024))], instances }));
    // b is empty; after one copy on b (25% cpu) a is still at 75%, so b again.
    expect(of(plan, 'place').map((a) => (a as { nodeId: string }).nodeId)).toEqual(['b', 'b']);
  });

  it('leaves copies unplaced when CPU, memory or GPUs do not fit, with the reason', () => {
    const nodes = [node('a', res(2, 1024)), node('b', res(8, 4096, 0))];
    const cpuBound = planReconcile(input({ nodes, services: [service('big', 1, res(16, 128))] }));
    expect(of(cpuBound, 'place')).toEqual([]);
    expect(cpuBound.unplaced).toEqual([
      { imageId: 'big', ordinal: 0, reason: 'no online node has enough free resources' },
    ]);

    const gpu = planReconcile(
      input({ nodes: [...nodes, node('g', res(8, 4096, 1))], services: [service('trt', 2, res(1, 512, 1))] }),
    );
    expect(of(gpu, 'place')).toEqual([{ type: 'place', imageId: 'trt', ordinal: 0, nodeId: 'g' }]);
    expect(gpu.unplaced).toHaveLength(1);

    const none = planReconcile(
      input({ nodes: [node('a', res(4, 8192), false)], services: [service('web', 1)] }),
    );
    expect(none.unplaced[0]?.reason).toBe('no online node');
  });

  it('places on a process node only services that give a command', () => {
    const proc: PlanNode = { ...node('p'), processOnly: true };
    const image = planReconcile(input({ nodes: [proc], services: [service('web', 1)] }));
    expect(of(image, 'place')).toEqual([]);
    expect(image.unplaced[0]?.reason).toBe(
      'no online node can run it: process nodes (no container engine) run only services that give a command',
    );
    const withCommand = planReconcile(
      input({ nodes: [proc, node('c')], services: [{ ...service('job', 2), hasCommand: true }] }),
    );
    expect(
      of(withCommand, 'place')
        .map((a) => 'nodeId' in a && a.nodeId)
        .sort(),
    ).toEqual(['c', 'p']);
    const mixed = planReconcile(input({ nodes: [proc, node('c')], services: [service('web', 2)] }));
    expect(of(mixed, 'place').map((a) => 'nodeId' in a && a.nodeId)).toEqual(['c', 'c']);
  });

  it('fills memory exactly, then stops', () => {
    const plan = planReconcile(
      input({ nodes: [node('a', res(4, 1024))], services: [service('m', 3, res(0, 512))] }),
    );
    expect(of(plan, 'place')).toHaveLength(2);
    expect(plan.unplaced).toHaveLength(1);
  });

  it('honours a pinned node', () => {
    const nodes = [node('a'), node('b')];
    const plan = planReconcile(input({ nodes, services: [service('web', 2, res(), 'b')] }));
    expect(of(plan, 'place').map((a) => (a as { nodeId: string }).nodeId)).toEqual(['b', 'b']);
    const offline = planReconcile(
      input({
        nodes: [node('a'), node('b', res(4, 8192), false)],
        services: [service('web', 1, res(), 'b')],
      }),
    );
    expect(offline.unplaced[0]?.reason).toBe('node b is offline');
  });

  it('does nothing when every copy is healthy', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a'), node('b')],
        services: [service('web', 2)],
        slots: [slot('web', 0, 'i0', 'a'), slot('web', 1, 'i1', 'b')],
        instances: [inst('i0', 'web', 'a'), inst('i1', 'web', 'b', 'pending')],
      }),
    );
    expect(plan).toEqual({ actions: [], unplaced: [] });
  });

  it('replaces a dead copy in its slot and retires the old container', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a'), node('b')],
        services: [service('web', 2)],
        slots: [slot('web', 0, 'i0', 'a'), slot('web', 1, 'i1', 'b')],
        instances: [inst('i0', 'web', 'a'), inst('i1', 'web', 'b', 'exited')],
      }),
    );
    expect(plan.actions).toEqual([
      { type: 'place', imageId: 'web', ordinal: 1, nodeId: 'b', replaces: 'i1' },
      { type: 'retire', imageId: 'web', instanceId: 'i1', nodeId: 'b', from: 'exited' },
    ]);
  });

  it('moves the copies of an offline node elsewhere and orphans the old ones', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a', res(4, 8192), false), node('b')],
        services: [service('web', 1, res(1, 256))],
        slots: [slot('web', 0, 'i0', 'a')],
        instances: [inst('i0', 'web', 'a', 'running', res(1, 256))],
      }),
    );
    expect(plan.actions).toEqual([
      { type: 'place', imageId: 'web', ordinal: 0, nodeId: 'b', replaces: 'i0' },
      { type: 'orphan', imageId: 'web', instanceId: 'i0', nodeId: 'a', from: 'running' },
    ]);
  });

  it('places nothing on a cordoned node, and leaves the copies already there', () => {
    const plan = planReconcile(
      input({
        nodes: [{ ...node('a'), cordoned: true }, node('b')],
        services: [service('web', 3), service('pinned', 1, res(), 'a')],
        slots: [slot('web', 0, 'i0', 'a')],
        instances: [inst('i0', 'web', 'a')],
      }),
    );
    expect(plan.actions).toEqual([
      { type: 'place', imageId: 'web', ordinal: 1, nodeId: 'b' },
      { type: 'place', imageId: 'web', ordinal: 2, nodeId: 'b' },
    ]);
    expect(plan.unplaced).toEqual([{ imageId: 'pinned', ordinal: 0, reason: 'node a is cordoned' }]);
  });

  it('moves the running copies of a draining node: replacement elsewhere, then the old one retired', () => {
    const plan = planReconcile(
      input({
        nodes: [{ ...node('a'), cordoned: true, draining: true }, node('b')],
        services: [service('web', 1, res(1, 256))],
        slots: [slot('web', 0, 'i0', 'a')],
        instances: [inst('i0', 'web', 'a', 'running', res(1, 256))],
      }),
    );
    expect(plan.actions).toEqual([
      { type: 'place', imageId: 'web', ordinal: 0, nodeId: 'b', replaces: 'i0' },
      { type: 'retire', imageId: 'web', instanceId: 'i0', nodeId: 'a', from: 'running' },
    ]);
  });

  it('keeps a draining copy where it is while no other node can take it, saying why', () => {
    const plan = planReconcile(
      input({
        nodes: [
          { ...node('a'), cordoned: true, draining: true },
          { ...node('b'), cordoned: true },
        ],
        services: [service('web', 1)],
        slots: [slot('web', 0, 'i0', 'a')],
        instances: [inst('i0', 'web', 'a')],
      }),
    );
    expect(plan.actions).toEqual([]);
    expect(plan.unplaced).toEqual([
      { imageId: 'web', ordinal: 0, reason: 'draining: every online node is cordoned' },
    ]);
  });

  it('keeps a dead copy in its slot while nothing can take it', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a', res(4, 8192), false)],
        services: [service('web', 1)],
        slots: [slot('web', 0, 'i0', 'a')],
        instances: [inst('i0', 'web', 'a')],
      }),
    );
    expect(plan.actions).toEqual([]);
    expect(plan.unplaced).toEqual([{ imageId: 'web', ordinal: 0, reason: 'no online node' }]);
  });

  it('retires orphans once their node is back', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a'), node('b')],
        services: [service('web', 1)],
        slots: [slot('web', 0, 'new', 'b')],
        instances: [inst('old', 'web', 'a', 'orphaned'), inst('new', 'web', 'b')],
      }),
    );
    expect(plan.actions).toEqual([
      { type: 'retire', imageId: 'web', instanceId: 'old', nodeId: 'a', from: 'orphaned' },
    ]);
  });

  it('releases surplus slots: a stopping copy first, then dead, then the highest healthy ordinal', () => {
    const nodes = [node('a')];
    const slots = [
      slot('web', 0, 'i0', 'a'),
      slot('web', 1, 'i1', 'a'),
      slot('web', 2, 'i2', 'a'),
      slot('web', 3, 'i3', 'a'),
    ];
    const instances = [
      inst('i0', 'web', 'a'),
      inst('i1', 'web', 'a', 'stopping'),
      inst('i2', 'web', 'a', 'failed'),
      inst('i3', 'web', 'a'),
    ];
    const plan = planReconcile(input({ nodes, services: [service('web', 1)], slots, instances }));
    expect(of(plan, 'release')).toEqual([
      { type: 'release', imageId: 'web', ordinal: 1, instanceId: 'i1' },
      { type: 'release', imageId: 'web', ordinal: 2, instanceId: 'i2' },
      { type: 'release', imageId: 'web', ordinal: 3, instanceId: 'i3' },
    ]);
    // The stopping one is its user's business; the others' containers go.
    expect(of(plan, 'retire').map((a) => (a as { instanceId: string }).instanceId)).toEqual(['i2', 'i3']);
    expect(of(plan, 'place')).toEqual([]);
  });

  it('treats a claimed slot without its instance as in flight until the grace passes', () => {
    const base = { nodes: [node('a')], services: [service('web', 1, res(4, 0))] };
    const fresh = planReconcile(input({ ...base, slots: [slot('web', 0, 'ghost', 'a', NOW - 1000)] }));
    expect(fresh.actions).toEqual([]);
    const stale = planReconcile(input({ ...base, slots: [slot('web', 0, 'ghost', 'a', NOW - 60_000)] }));
    expect(stale.actions).toEqual([
      { type: 'place', imageId: 'web', ordinal: 0, nodeId: 'a', replaces: 'ghost' },
    ]);
  });

  it('fills ordinal holes before growing', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a')],
        services: [service('web', 3)],
        slots: [slot('web', 1, 'i1', 'a')],
        instances: [inst('i1', 'web', 'a')],
      }),
    );
    expect(of(plan, 'place').map((a) => (a as { ordinal: number }).ordinal)).toEqual([0, 2]);
  });

  it('leaves stopped copies and settled states alone', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a')],
        services: [service('web', 0)],
        instances: [
          inst('s', 'web', 'a', 'stopped'),
          inst('r', 'web', 'a', 'removing'),
          inst('x', 'web', 'a', 'removed'),
        ],
      }),
    );
    expect(plan).toEqual({ actions: [], unplaced: [] });
  });

  it('plans only the services it is given, with everyone else on the nodes counted', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a', res(2, 1024))],
        services: [service('web', 1, res(1, 512))],
        instances: [
          inst('o', 'other', 'a', 'exited', res(2, 1024)),
          inst('p', 'other2', 'a', 'running', res(1, 512)),
        ],
      }),
    );
    expect(of(plan, 'place')).toHaveLength(1);
    const full = planReconcile(
      input({
        nodes: [node('a', res(2, 1024))],
        services: [service('web', 1, res(1, 512))],
        instances: [inst('p', 'other2', 'a', 'running', res(2, 512))],
      }),
    );
    expect(full.unplaced).toHaveLength(1);
  });
});

/** Applies a plan the way the reconciler does when every conditional write wins. */
function applyPlan(state: PlanInput, plan: Plan): PlanInput {
  let slots = [...state.slots];
  let instances = [...state.instances];
  let n = 0;
  const reserveOf = new Map(state.services.map((s) => [s.imageId, s.reserve]));
  for (const a of plan.actions) {
    if (a.type === 'place') {
      const id = `new${n++}-${a.imageId}-${a.ordinal}`;
      slots = slots.filter((s) => !(s.imageId === a.imageId && s.ordinal === a.ordinal));
      slots.push({
        imageId: a.imageId,
        ordinal: a.ordinal,
        instanceId: id,
        nodeId: a.nodeId,
        claimedAt: state.now,
      });
      instances.push({
        instanceId: id,
        imageId: a.imageId,
        nodeId: a.nodeId,
        status: 'pending',
        reserve: reserveOf.get(a.imageId)!,
      });
    } else if (a.type === 'release') {
      slots = slots.filter((s) => !(s.imageId === a.imageId && s.ordinal === a.ordinal));
    } else if (a.type === 'retire') {
      // Still holding the node until the agent confirms the removal.
      instances = instances.map((i) => (i.instanceId === a.instanceId ? { ...i, status: 'removing' } : i));
    } else {
      instances = instances.map((i) => (i.instanceId === a.instanceId ? { ...i, status: 'orphaned' } : i));
    }
  }
  return { ...state, slots, instances };
}

const statuses: InstanceStatus[] = [
  'pending',
  'running',
  'stopping',
  'stopped',
  'exited',
  'failed',
  'orphaned',
  'removing',
  'removed',
];

const world = fc
  .record({
    nodes: fc.uniqueArray(
      fc.record({
        id: fc.constantFrom('n1', 'n2', 'n3', 'n4'),
        online: fc.boolean(),
        cpu: fc.integer({ min: 0, max: 8 }),
        mem: fc.integer({ min: 0, max: 8 }),
      }),
      { selector: (n) => n.id, maxLength: 4 },
    ),
    services: fc.uniqueArray(
      fc.record({
        imageId: fc.constantFrom('a:1', 'b:2', 'c:3'),
        desired: fc.integer({ min: 0, max: 6 }),
        cpu: fc.integer({ min: 0, max: 2 }),
        mem: fc.integer({ min: 0, max: 2 }),
      }),
      { selector: (s) => s.imageId, maxLength: 3 },
    ),
    existing: fc.array(
      fc.record({
        image: fc.constantFrom('a:1', 'b:2', 'c:3'),
        ordinal: fc.integer({ min: 0, max: 8 }),
        node: fc.constantFrom('n1', 'n2', 'n3', 'n4'),
        status: fc.constantFrom(...statuses),
        slotted: fc.boolean(),
      }),
      { maxLength: 12 },
    ),
  })
  .map(({ nodes, services, existing }) => {
    const planNodes = nodes.map((n) => node(n.id, res(n.cpu, n.mem * 1024), n.online));
    const planServices = services.map((s) => service(s.imageId, s.desired, res(s.cpu * 0.5, s.mem * 512)));
    const reserveOf = new Map(planServices.map((s) => [s.imageId, s.reserve]));
    const instances: PlanInstance[] = [];
    const slots: PlanSlot[] = [];
    existing.forEach((e, i) => {
      if (!reserveOf.has(e.image)) return;
      const id = `x${i}`;
      instances.push(inst(id, e.image, e.node, e.status, reserveOf.get(e.image)!));
      if (e.slotted && !slots.some((s) => s.imageId === e.image && s.ordinal === e.ordinal))
        slots.push(slot(e.image, e.ordinal, id, e.node));
    });
    return input({ nodes: planNodes, services: planServices, slots, instances });
  });

describe('planReconcile properties', () => {
  it('never overcommits a node, never holds more slots than desired, and converges in one step', () => {
    fc.assert(
      fc.property(world, (state) => {
        const plan = planReconcile(state);
        const next = applyPlan(state, plan);

        for (const s of state.services) {
          const mine = next.slots.filter((x) => x.imageId === s.imageId);
          expect(mine.length).toBeLessThanOrEqual(Math.max(s.desiredCount, 0));
          expect(new Set(mine.map((x) => x.ordinal)).size).toBe(mine.length);
        }

        // New placements only go where they fit, on top of what already occupied the node.
        const reserveOf = new Map(state.services.map((s) => [s.imageId, s.reserve]));
        for (const n of state.nodes) {
          const placed = plan.actions.filter((a) => a.type === 'place' && a.nodeId === n.id);
          if (!placed.length) continue;
          expect(n.online).toBe(true);
          const used = [
            ...state.instances
              .filter((i) => i.nodeId === n.id && OCCUPYING.has(i.status))
              .map((i) => i.reserve),
            ...placed.map((a) => reserveOf.get(a.imageId)!),
          ].reduce((u, r) => ({ cpu: u.cpu + r.cpu, mem: u.mem + r.memoryMb }), { cpu: 0, mem: 0 });
          if (placed.some((a) => reserveOf.get(a.imageId)!.cpu > 0))
            expect(used.cpu).toBeLessThanOrEqual(n.capacity.cpu + 1e-9);
          if (placed.some((a) => reserveOf.get(a.imageId)!.memoryMb > 0))
            expect(used.mem).toBeLessThanOrEqual(n.capacity.memoryMb + 1e-9);
        }

        // A second pass over the result places nothing new and releases nothing.
        const again = planReconcile({ ...next, now: state.now });
        expect(again.actions.filter((a) => a.type === 'place' || a.type === 'release')).toEqual([]);
        expect(again.actions.filter((a) => a.type === 'retire' || a.type === 'orphan')).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  it('is deterministic: the same input gives the same plan', () => {
    fc.assert(
      fc.property(world, (state) => {
        expect(planReconcile(state)).toEqual(planReconcile(structuredClone(state)));
      }),
    );
  });
});

describe('global services', () => {
  const nodes = [node('a'), node('b'), node('c', res(4, 8192), false), { ...node('d'), cordoned: true }];
  const global = { ...service('exporter', 99), global: true };

  it('places one copy on each online node taking work, whatever the count says', () => {
    const plan = planReconcile(input({ nodes, services: [global] }));
    expect(
      of(plan, 'place')
        .map((a) => (a as { nodeId: string }).nodeId)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(plan.unplaced).toEqual([]);
  });

  it('releases the copy of a node that went offline instead of moving it', () => {
    const plan = planReconcile(
      input({
        nodes,
        services: [global],
        slots: [
          slot('exporter', 0, 'i-a', 'a'),
          slot('exporter', 1, 'i-b', 'b'),
          slot('exporter', 2, 'i-c', 'c'),
        ],
        instances: [inst('i-a', 'exporter', 'a'), inst('i-b', 'exporter', 'b'), inst('i-c', 'exporter', 'c')],
      }),
    );
    expect(of(plan, 'place')).toEqual([]);
    expect(of(plan, 'release')).toEqual([
      { type: 'release', imageId: 'exporter', ordinal: 2, instanceId: 'i-c' },
    ]);
  });

  it('counts only the nodes meeting its constraints', () => {
    const labelled = nodes.map((n): PlanNode => ({
      ...n,
      facts: {
        id: n.id,
        hostname: n.id,
        labels: (n.id === 'b' ? { gpu: 'h100' } : {}) as Record<string, string>,
        arch: 'x86_64',
        os: 'linux',
      },
    }));
    const constrained = {
      ...global,
      constraints: [{ field: 'labels.gpu', op: '==' as const, value: 'h100' }],
    };
    expect(globalCount(labelled, constrained)).toBe(1);
    const plan = planReconcile(input({ nodes: labelled, services: [constrained] }));
    expect(of(plan, 'place').map((a) => (a as { nodeId: string }).nodeId)).toEqual(['b']);
  });
});

describe("placement and the nodes' own policies", () => {
  it('places copies only on nodes whose policy does not refuse them', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a'), node('b'), node('c')],
        services: [{ ...service('img', 3), refusedBy: new Set(['a', 'c']) }],
      }),
    );
    expect(of(plan, 'place').map((a) => (a as { nodeId: string }).nodeId)).toEqual(['b', 'b', 'b']);
    expect(plan.unplaced).toEqual([]);
  });

  it('runs a global service only on the nodes whose policy allows it', () => {
    const refusing = { ...service('exporter', 99), global: true, refusedBy: new Set(['b']) };
    const nodes = [node('a'), node('b'), node('c')];
    expect(globalCount(nodes, refusing)).toBe(2);
    const plan = planReconcile(input({ nodes, services: [refusing] }));
    expect(
      of(plan, 'place')
        .map((a) => (a as { nodeId: string }).nodeId)
        .sort(),
    ).toEqual(['a', 'c']);
    expect(plan.unplaced).toEqual([]);
  });

  it('leaves a copy unplaced, saying why, when every online node refuses it', () => {
    const plan = planReconcile(
      input({
        nodes: [node('a'), node('b'), node('c', res(4, 8192), false)],
        services: [{ ...service('img', 1), refusedBy: new Set(['a', 'b']) }],
      }),
    );
    expect(plan.actions).toEqual([]);
    expect(plan.unplaced).toEqual([
      { imageId: 'img', ordinal: 0, reason: "every online node's own policy refuses its containers" },
    ]);
  });
});
