import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyRebalance,
  planRebalance,
  REBALANCE_STRATEGIES,
  type RebalanceStrategy,
  type SchedAssignment,
  type SchedModel,
  type SchedNode,
} from '../../../functions/task-planner/index.js';
import { modelsArb, nodesArb } from './support.js';

function node(id: string, over: Partial<SchedNode> = {}): SchedNode {
  return {
    id,
    online: true,
    gpuMemoryTotalMb: 24_000,
    loadedModels: [],
    runningTasks: 0,
    maxConcurrency: 2,
    ...over,
  };
}

const models: SchedModel[] = [
  { id: 'A', gpuMemoryMb: 8_000 },
  { id: 'B', gpuMemoryMb: 12_000 },
  { id: 'C', gpuMemoryMb: 4_000 },
  { id: 'D', gpuMemoryMb: 8_000 },
];

describe('planRebalance: memory_optimized', () => {
  it('moves a queued-for model off an over-committed node when it is resident nowhere else', () => {
    const nodes = [
      node('n1', { gpuMemoryTotalMb: 16_000, loadedModels: ['A', 'B'], runningTasks: 1 }),
      node('n2'),
    ];
    const assignments: SchedAssignment[] = [{ nodeId: 'n1', model: 'A', taskId: 't1' }];
    const plan = planRebalance(nodes, models, assignments, 'memory_optimized', { demand: { B: 3 } });
    expect(plan.operations).toEqual([
      { type: 'move', fromNodeId: 'n1', toNodeId: 'n2', model: 'B', reason: 'over-committed GPU memory' },
    ]);
    expect(plan.affectedNodes).toEqual(['n1', 'n2']);
  });

  it('evicts unwanted models first when over-committed, and never a busy one', () => {
    const nodes = [node('n1', { gpuMemoryTotalMb: 20_000, loadedModels: ['A', 'B', 'C'], runningTasks: 1 })];
    const plan = planRebalance(nodes, models, [{ nodeId: 'n1', model: 'B' }], 'memory_optimized', {
      demand: { A: 1 },
    });
    // 24 000 on 20 000: C (nobody queued) goes first and is enough; B runs; A is wanted.
    expect(plan.operations).toEqual([
      { type: 'unload', nodeId: 'n1', model: 'C', reason: 'over-committed GPU memory' },
    ]);
  });

  it('unloads idle replicas nobody queues for, keeping one per model', () => {
    const nodes = ['n1', 'n2', 'n3'].map((id) => node(id, { loadedModels: ['A'] }));
    const plan = planRebalance(nodes, models, [], 'memory_optimized');
    expect(plan.operations).toEqual([
      { type: 'unload', nodeId: 'n1', model: 'A', reason: 'idle replica, nothing queued' },
      { type: 'unload', nodeId: 'n2', model: 'A', reason: 'idle replica, nothing queued' },
    ]);
  });

  it('preloads a queued-for model that is resident nowhere into the roomiest node', () => {
    const nodes = [
      node('n1', { loadedModels: ['B'] }),
      node('n2', { loadedModels: ['C'] }),
      node('off', { online: false }),
    ];
    const plan = planRebalance(nodes, models, [], 'memory_optimized', { demand: { D: 5, B: 1 } });
    expect(plan.operations).toEqual([
      { type: 'load', nodeId: 'n2', model: 'D', reason: 'queued for, resident nowhere' },
    ]);
  });

  it('with force, may interrupt running tasks and says how many', () => {
    const nodes = [node('n1', { gpuMemoryTotalMb: 16_000, loadedModels: ['A', 'B'], runningTasks: 2 })];
    const assignments = [
      { nodeId: 'n1', model: 'A' },
      { nodeId: 'n1', model: 'B' },
      { nodeId: 'n1', model: 'B' },
    ];
    expect(planRebalance(nodes, models, assignments, 'memory_optimized').operations).toEqual([]);
    expect(planRebalance(nodes, models, assignments, 'memory_optimized', { force: true }).operations).toEqual(
      [{ type: 'unload', nodeId: 'n1', model: 'B', reason: 'over-committed GPU memory', interruptsTasks: 2 }],
    );
  });
});

describe('planRebalance: load_balanced', () => {
  it('gives replicas in proportion to the queue, using free memory first', () => {
    const nodes = [
      node('n1', { loadedModels: ['A'] }),
      ...['n2', 'n3', 'n4'].map((id) => node(id, { loadedModels: ['D'] })),
    ];
    // 4 nodes, A:D = 3:1 -> A 3 replicas, D 1 (already 3: surplus kept, memory is free).
    const plan = planRebalance(nodes, models, [], 'load_balanced', { demand: { A: 30, D: 10 } });
    expect(plan.operations).toEqual([
      { type: 'load', nodeId: 'n2', model: 'A', reason: 'below its share of the queue' },
      { type: 'load', nodeId: 'n3', model: 'A', reason: 'below its share of the queue' },
    ]);
  });

  it('evicts surplus idle replicas when there is no free memory, never busy ones', () => {
    const small = { gpuMemoryTotalMb: 8_000 };
    const nodes = [
      node('n1', { ...small, loadedModels: ['A'] }),
      node('n2', { ...small, loadedModels: ['D'], runningTasks: 1 }),
      node('n3', { ...small, loadedModels: ['D'] }),
      node('n4', { ...small, loadedModels: ['D'] }),
    ];
    const plan = planRebalance(nodes, models, [{ nodeId: 'n2', model: 'D' }], 'load_balanced', {
      demand: { A: 30, D: 10 },
    });
    expect(plan.operations).toEqual([
      { type: 'unload', nodeId: 'n3', model: 'D', reason: 'surplus replica, making room for A' },
      { type: 'load', nodeId: 'n3', model: 'A', reason: 'below its share of the queue' },
      { type: 'unload', nodeId: 'n4', model: 'D', reason: 'surplus replica, making room for A' },
      { type: 'load', nodeId: 'n4', model: 'A', reason: 'below its share of the queue' },
    ]);
    expect(applyRebalance(nodes, plan.operations).map((n) => n.loadedModels)).toEqual([
      ['A'],
      ['D'],
      ['A'],
      ['A'],
    ]);
  });

  it('rejects an unknown strategy', () => {
    expect(() => planRebalance([], models, [], 'fastest' as RebalanceStrategy)).toThrow(
      /unknown rebalance strategy/,
    );
  });
});

describe('planRebalance properties', () => {
  const arb = modelsArb.chain((ms) =>
    fc.record({
      models: fc.constant(ms),
      nodes: nodesArb(ms),
      strategy: fc.constantFrom(...REBALANCE_STRATEGIES),
      demand: fc.dictionary(fc.constantFrom(...ms.map((m) => m.id)), fc.integer({ min: 0, max: 20 })),
      force: fc.boolean(),
      overcommit: fc.array(fc.constantFrom(...ms.map((m) => m.id)), { maxLength: 3 }),
    }),
  );

  it('operations are consistent, safe, side-effect free and fix memory where they can', () => {
    fc.assert(
      fc.property(arb, ({ models: ms, nodes: base, strategy, demand, force, overcommit }) => {
        // Add extra resident models to the first node so over-commitment shows up.
        const nodes = base.map((n, i) =>
          i === 0 ? { ...n, loadedModels: [...new Set([...n.loadedModels, ...overcommit])] } : n,
        );
        // Running tasks: one per resident model up to runningTasks, in order.
        const assignments: SchedAssignment[] = nodes.flatMap((n) =>
          n.loadedModels.slice(0, n.runningTasks).map((model) => ({ nodeId: n.id, model })),
        );
        const snapshot = JSON.stringify(nodes);
        const plan = planRebalance(Object.freeze(nodes), ms, assignments, strategy, { demand, force });
        expect(JSON.stringify(nodes)).toBe(snapshot);
        expect(planRebalance(nodes, ms, assignments, strategy, { demand, force })).toEqual(plan);

        const mem = new Map(ms.map((m) => [m.id, m.gpuMemoryMb]));
        const byId = new Map(nodes.map((n) => [n.id, n]));
        const resident = new Map(nodes.map((n) => [n.id, new Set(n.loadedModels)]));
        const busy = (id: string, m: string) => assignments.some((a) => a.nodeId === id && a.model === m);
        const take = (id: string, m: string) => {
          expect(byId.get(id)?.online).toBe(true);
          expect(resident.get(id)?.has(m)).toBe(true);
          if (!force) expect(busy(id, m)).toBe(false);
          resident.get(id)!.delete(m);
        };
        const give = (id: string, m: string) => {
          expect(byId.get(id)?.online).toBe(true);
          expect(resident.get(id)?.has(m)).toBe(false);
          resident.get(id)!.add(m);
        };
        for (const op of plan.operations) {
          if (op.type === 'unload') take(op.nodeId, op.model);
          else if (op.type === 'load') give(op.nodeId, op.model);
          else {
            take(op.fromNodeId, op.model);
            give(op.toNodeId, op.model);
          }
        }

        for (const n of nodes) {
          if (!n.online) continue;
          const left = [...resident.get(n.id)!];
          const used = left.reduce((s, m) => s + (mem.get(m) ?? 0), 0);
          // Over capacity only if nothing left there could be evicted.
          if (used > n.gpuMemoryTotalMb && !force) expect(left.every((m) => busy(n.id, m))).toBe(true);
          if (force) expect(used).toBeLessThanOrEqual(n.gpuMemoryTotalMb);
        }
        // A queued-for model resident on a healthy node (online, serving, not over-committed) stays
        // resident somewhere; over-commitment may force out the last copy when nothing has room.
        const healthy = (n: SchedNode) =>
          n.online &&
          n.maxConcurrency > 0 &&
          n.loadedModels.reduce((s, m) => s + (mem.get(m) ?? 0), 0) <= n.gpuMemoryTotalMb;
        for (const [m, d] of Object.entries(demand)) {
          if (d <= 0 || !nodes.some((n) => healthy(n) && n.loadedModels.includes(m))) continue;
          expect([...resident.values()].some((s) => s.has(m))).toBe(true);
        }
        expect(applyRebalance(nodes, plan.operations).map((n) => [...n.loadedModels].sort())).toEqual(
          nodes.map((n) => [...resident.get(n.id)!].sort()),
        );
      }),
      { numRuns: 400 },
    );
  });
});
