import { describe, expect, it } from 'vitest';
import { modelDeclaration } from '../../../functions/cluster/catalogue.js';
import type { Worker } from '../../../functions/cluster/workers.js';
import type { NodeItem } from '../../../functions/nodes/nodes.js';
import { cloudOnlyModels, withRentedNodes, type ModelBursts } from '../../../functions/novita/model-burst.js';
import { planPlacements, type SchedTask } from '../../../functions/task-planner/index.js';

const worker = (id: string, driver: 'container' | 'process'): Worker => ({
  node: { nodeId: id, nodeName: id, driver } as NodeItem,
  id,
  name: id,
  online: true,
  gpuType: undefined,
  gpuMemoryTotalMb: 0,
  gpuMemoryUsedMb: undefined,
  gpuUtilization: undefined,
  temperature: undefined,
  driverVersion: undefined,
  maxConcurrency: 1,
  resident: [],
  reported: [],
  running: [],
});
const task = (id: string, model: string): SchedTask => ({ id, model, priority: 0, enqueuedAt: 1 });
const CLOUD = { product: 'RTX 4090 24GB', region: 'CN-HK-01', max_price_per_hour: 1, spot: true };
const declared = {
  kind: 'image',
  image: 'server:1',
  port: 8080,
  protocol: 'vision-generate',
  gpuMemoryMb: 0,
};

describe('model bursts', () => {
  it('a declaration with cloud needs a command; cloud.always defaults to false', () => {
    const refused = modelDeclaration.safeParse({ ...declared, cloud: CLOUD });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['command', 'cloud needs command: rented nodes run the model server as a process'],
    ]);
    const ok = modelDeclaration.parse({ ...declared, cloud: CLOUD, command: ['serve'] });
    expect(ok.cloud).toEqual({ ...CLOUD, always: false });
  });

  it('places what the fleet left queued on the model’s own rented node, and cloud-only tasks there only', () => {
    const models = [
      { id: 'm', gpuMemoryMb: 0 },
      { id: 'other', gpuMemoryMb: 0 },
      { id: 'only', gpuMemoryMb: 0 },
    ];
    const fleet = worker('fleet', 'container');
    const rentedM = worker('rented-m', 'process');
    const rentedOnly = worker('rented-only', 'process');
    const bursts: ModelBursts = {
      instances: [],
      nodes: new Map([
        ['rented-m', 'm'],
        ['rented-only', 'only'],
      ]),
    };
    // The fleet's one node takes one task; the process nodes are not the fleet pass's.
    const queued = [task('t1', 'm'), task('t2', 'm'), task('t3', 'other')];
    const fleetPlan = planPlacements({
      nodes: [fleet, rentedM, rentedOnly].map((w) => ({
        id: w.id,
        online: w.node.driver !== 'process',
        gpuMemoryTotalMb: 0,
        loadedModels: [],
        runningTasks: 0,
        maxConcurrency: 1,
      })),
      models,
      queue: queued,
      now: 2,
    });
    expect(fleetPlan.placements.map((p) => [p.taskId, p.nodeId])).toEqual([['t1', 'fleet']]);
    const plan = withRentedNodes(fleetPlan, {
      bursts,
      workers: [fleet, rentedM, rentedOnly],
      models,
      cloudOnly: [task('c1', 'only'), task('c2', 'only'), { ...task('c3', 'only'), timeoutMs: 1 }],
      tasks: new Map(queued.map((t) => [t.id, t])),
      now: 2,
    });
    expect(plan.placements.map((p) => [p.taskId, p.nodeId])).toEqual([
      ['t1', 'fleet'],
      ['t2', 'rented-m'],
      ['c1', 'rented-only'],
    ]);
    // `other` has no rented node; the second cloud-only task waits for its node's slot; the third
    // (the fleet pass never saw it) is past its queue timeout.
    expect(plan.stillQueued.sort()).toEqual(['c2', 't3']);
    expect(plan.timedOut).toEqual(['c3']);
  });

  it('cloud-only models are those with cloud.always', () => {
    const spec = (id: string, cloud?: object) =>
      ({ id, ...(cloud ? { cloud } : {}) }) as Parameters<typeof cloudOnlyModels>[0][number];
    expect([
      ...cloudOnlyModels([
        spec('a'),
        spec('b', { ...CLOUD, always: false }),
        spec('c', { ...CLOUD, always: true }),
      ]),
    ]).toEqual(['c']);
  });
});
