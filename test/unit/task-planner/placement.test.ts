import { describe, expect, it } from 'vitest';
import {
  planPlacements,
  type PlacementInput,
  type SchedModel,
  type SchedNode,
  type SchedTask,
} from '../../../functions/task-planner/index.js';
import { checkPlan, simulate } from './support.js';

const NOW = 1_000_000;
const models: SchedModel[] = [
  { id: 'A', gpuMemoryMb: 6_000 },
  { id: 'B', gpuMemoryMb: 6_000 },
  { id: 'C', gpuMemoryMb: 6_000 },
  { id: 'D', gpuMemoryMb: 6_000 },
  { id: 'BIG', gpuMemoryMb: 20_000 },
];

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

function task(id: string, model: string, over: Partial<SchedTask> = {}): SchedTask {
  return { id, model, priority: 0, enqueuedAt: NOW, ...over };
}

function plan(input: Omit<PlacementInput, 'models' | 'now'> & { now?: number }) {
  const full: PlacementInput = { models, now: NOW, ...input };
  const result = planPlacements(full);
  checkPlan(full, result);
  return result;
}

describe('CPU models (0 MB of GPU memory)', () => {
  it('switch onto nodes without GPU memory; GPU models never do', () => {
    const withCpu: SchedModel[] = [...models, { id: 'CPU', gpuMemoryMb: 0 }];
    const nodes = [node('n1', { gpuMemoryTotalMb: 0, maxConcurrency: 1 })];
    const full: PlacementInput = {
      models: withCpu,
      now: NOW,
      nodes,
      queue: [task('t1', 'A'), task('t2', 'CPU', { enqueuedAt: NOW + 1 })],
    };
    const result = planPlacements(full);
    checkPlan(full, result);
    expect(result.placements).toEqual([{ taskId: 't2', nodeId: 'n1', switchModel: { from: [], to: 'CPU' } }]);
    expect(result.stillQueued).toEqual(['t1']);
  });
});

describe('rule 1: model already resident', () => {
  it('prefers the least busy node with the model and a free slot', () => {
    // Prepare
    const nodes = [
      node('n1', { loadedModels: ['A'], runningTasks: 2, maxConcurrency: 4 }),
      node('n2', { loadedModels: ['A'], runningTasks: 1, maxConcurrency: 4 }),
      node('n3', { loadedModels: ['A'], runningTasks: 1, maxConcurrency: 1 }), // full
      node('n4'), // empty and idle: rule 2 would pick it, rule 1 must win
    ];
    // Act
    const result = plan({ nodes, queue: [task('t1', 'A'), task('t2', 'A', { enqueuedAt: NOW + 1 })] });
    // Assess: t1 on n2 (1/4), then n2 is 2/4 and ties with n1 (2/4): more free slots equal, id n1 wins
    expect(result.placements).toEqual([
      { taskId: 't1', nodeId: 'n2' },
      { taskId: 't2', nodeId: 'n1' },
    ]);
  });

  it('updates concurrency as it places: never more than maxConcurrency', () => {
    const nodes = [node('n1', { loadedModels: ['A'], maxConcurrency: 2 })];
    const queue = [1, 2, 3].map((i) => task(`t${i}`, 'A', { enqueuedAt: NOW - i }));
    const result = plan({ nodes, queue });
    expect(result.placements.map((p) => p.taskId)).toEqual(['t3', 't2']);
    expect(result.stillQueued).toEqual(['t1']);
  });

  it('ignores offline nodes and nodes that miss the requirements', () => {
    const nodes = [
      node('n1', { loadedModels: ['A'], online: false }),
      node('n2', { loadedModels: ['A'], gpuType: 'orin' }),
      node('n3', { loadedModels: ['B'], gpuType: 'a100' }),
    ];
    const result = plan({ nodes, queue: [task('t1', 'A', { requirements: { gpuType: 'a100' } })] });
    expect(result.placements).toEqual([
      { taskId: 't1', nodeId: 'n3', switchModel: { from: ['B'], to: 'A' } },
    ]);
  });
});

describe('rule 2: switch the model on an idle node', () => {
  it('switches an empty node before one holding an unwanted model, before one holding a wanted model', () => {
    const nodes = [
      node('hot', { loadedModels: ['B'] }), // B is queued for
      node('cold', { loadedModels: ['C'] }), // nobody waits for C
      node('empty'),
    ];
    const queue = [
      task('a1', 'A', { enqueuedAt: NOW - 3 }),
      task('d1', 'D', { enqueuedAt: NOW - 2 }),
      task('b1', 'B', { enqueuedAt: NOW - 1 }),
    ];
    const result = plan({ nodes, queue });
    expect(result.placements).toEqual([
      { taskId: 'a1', nodeId: 'empty', switchModel: { from: [], to: 'A' } },
      { taskId: 'd1', nodeId: 'cold', switchModel: { from: ['C'], to: 'D' } },
      { taskId: 'b1', nodeId: 'hot' },
    ]);
  });

  it('unloads every resident model and only needs the target to fit', () => {
    const nodes = [node('n1', { loadedModels: ['A', 'B', 'C'] })];
    const result = plan({ nodes, queue: [task('t1', 'BIG')] });
    expect(result.placements).toEqual([
      { taskId: 't1', nodeId: 'n1', switchModel: { from: ['A', 'B', 'C'], to: 'BIG' } },
    ]);
  });

  it('never switches a node that runs tasks, and never one the model does not fit', () => {
    const nodes = [
      node('busy', { loadedModels: ['A'], runningTasks: 1, maxConcurrency: 4 }),
      node('small', { gpuMemoryTotalMb: 8_000 }),
    ];
    const result = plan({ nodes, queue: [task('t1', 'BIG'), task('t2', 'B', { enqueuedAt: NOW + 1 })] });
    // BIG fits nowhere idle; B takes the small idle node.
    expect(result.placements).toEqual([
      { taskId: 't2', nodeId: 'small', switchModel: { from: [], to: 'B' } },
    ]);
    expect(result.stillQueued).toEqual(['t1']);
  });

  it('a switched node serves the next tasks of its new model by rule 1', () => {
    const nodes = [node('n1', { maxConcurrency: 3 }), node('n2', { maxConcurrency: 3 })];
    const queue = [1, 2, 3, 4].map((i) => task(`t${i}`, 'A', { enqueuedAt: NOW + i }));
    const result = plan({ nodes, queue });
    // t1 switches n1, t2 and t3 ride along on n1 (rule 1), t4 finds n1 full and switches n2.
    expect(result.placements.filter((p) => p.switchModel).map((p) => p.taskId)).toEqual(['t1', 't4']);
    expect(result.placements.map((p) => p.nodeId)).toEqual(['n1', 'n1', 'n1', 'n2']);
  });

  it('applies memory headroom', () => {
    const nodes = [node('n1', { gpuMemoryTotalMb: 20_500 })];
    const result = plan({ nodes, queue: [task('t1', 'BIG')], options: { memoryHeadroomMb: 1_000 } });
    expect(result.stillQueued).toEqual(['t1']);
  });
});

describe('rule 3 and ordering', () => {
  it('leaves a task queued when nothing fits, and a model nobody knows only runs where resident', () => {
    const nodes = [node('n1', { loadedModels: ['A'], runningTasks: 2 }), node('n2')];
    const result = plan({ nodes, queue: [task('t1', 'A'), task('t2', 'ghost', { enqueuedAt: NOW + 1 })] });
    expect(result.placements).toEqual([{ taskId: 't1', nodeId: 'n2', switchModel: { from: [], to: 'A' } }]);
    expect(result.stillQueued).toEqual(['t2']);
  });

  it('orders by priority, then FIFO; stillQueued is the queue order', () => {
    const nodes = [node('n1', { loadedModels: ['A'], maxConcurrency: 1 })];
    const queue = [
      task('low', 'A', { priority: -1, enqueuedAt: NOW - 10 }),
      task('n-late', 'A', { enqueuedAt: NOW - 1 }),
      task('n-early', 'A', { enqueuedAt: NOW - 2 }),
      task('crit', 'A', { priority: 2, enqueuedAt: NOW }),
    ];
    const result = plan({ nodes, queue, options: { agingPerMinute: 0 } });
    expect(result.placements).toEqual([{ taskId: 'crit', nodeId: 'n1' }]);
    expect(result.stillQueued).toEqual(['n-early', 'n-late', 'low']);
  });

  it('aging lets an old low task overtake a fresh high one', () => {
    const nodes = [node('n1', { loadedModels: ['A'], maxConcurrency: 1 })];
    const queue = [
      task('high', 'A', { priority: 1 }),
      task('low', 'A', { priority: -1, enqueuedAt: NOW - 21 * 60_000 }),
    ];
    // 0.1 level/min: after 21 min low is at 1.1 > 1.
    expect(plan({ nodes, queue }).placements[0]?.taskId).toBe('low');
    expect(plan({ nodes, queue, options: { agingPerMinute: 0 } }).placements[0]?.taskId).toBe('high');
  });

  it('does not start a lower task in place of a higher one that fits', () => {
    // The only node is idle: the higher B task takes it, though A is resident there.
    const nodes = [node('n1', { loadedModels: ['A'], maxConcurrency: 4 })];
    const queue = [task('a', 'A', { enqueuedAt: NOW - 1 }), task('b', 'B', { priority: 1 })];
    const result = plan({ nodes, queue });
    expect(result.placements).toEqual([{ taskId: 'b', nodeId: 'n1', switchModel: { from: ['A'], to: 'B' } }]);
    expect(result.stillQueued).toEqual(['a']);
  });

  it('backfills a lower task when the higher one fits nowhere', () => {
    const nodes = [node('n1', { loadedModels: ['A'], runningTasks: 1, maxConcurrency: 4 })];
    const queue = [task('b', 'B', { priority: 2 }), task('a', 'A')];
    const result = plan({ nodes, queue, options: { drainAfterMs: Number.POSITIVE_INFINITY } });
    expect(result.placements).toEqual([{ taskId: 'a', nodeId: 'n1' }]);
  });

  it('reports tasks past their timeout instead of placing them', () => {
    const nodes = [node('n1', { loadedModels: ['A'] })];
    const queue = [
      task('expired', 'A', { enqueuedAt: NOW - 300_000, timeoutMs: 300_000 }),
      task('fresh', 'A', { enqueuedAt: NOW - 299_999, timeoutMs: 300_000 }),
    ];
    const result = plan({ nodes, queue });
    expect(result.timedOut).toEqual(['expired']);
    expect(result.placements).toEqual([{ taskId: 'fresh', nodeId: 'n1' }]);
  });

  it('rejects duplicate ids and a non-finite clock; does not mutate its input', () => {
    const nodes = Object.freeze([
      Object.freeze(node('n1', { loadedModels: Object.freeze(['A']) as string[] })),
    ]);
    const queue = Object.freeze([Object.freeze(task('t1', 'B'))]);
    expect(() => planPlacements({ nodes, models, queue, now: NOW })).not.toThrow();
    expect(() => planPlacements({ nodes: [node('x'), node('x')], models, queue: [], now: NOW })).toThrow(
      /duplicate node/,
    );
    expect(() =>
      planPlacements({ nodes: [], models, queue: [task('t', 'A'), task('t', 'A')], now: NOW }),
    ).toThrow(/duplicate task/);
    expect(() => planPlacements({ nodes: [], models, queue: [], now: Number.NaN })).toThrow(RangeError);
  });
});

describe('draining against starvation', () => {
  // One node, two slots, kept busy by a stream of low A tasks (2 rounds each, one per round,
  // staggered by a task already running at round 0). A critical B task needs the node idle to
  // switch; it fits nowhere, so backfilling A is allowed and would go on forever.
  const run = (drainAfterMs: number) =>
    simulate({
      nodes: [node('n1', { loadedModels: ['A'], maxConcurrency: 2, runningTasks: 1 })],
      models,
      arrivals: (r) => [
        ...(r === 0 ? [task('b', 'B', { priority: 2, enqueuedAt: NOW })] : []),
        task(`a${r}`, 'A', { priority: -1, enqueuedAt: NOW + r * 10_000 }),
      ],
      duration: (t) => (t.model === 'A' ? 2 : 1),
      rounds: 40,
      start: NOW,
      roundMs: 10_000,
      options: { drainAfterMs },
    });

  it('without draining, the B task starves behind the stream', () => {
    const res = run(Number.POSITIVE_INFINITY);
    expect(res.placedRound.has('b')).toBe(false);
    expect(res.switches).toBe(0);
  });

  it('with draining, the node is held from round 6, empties and switches in round 7', () => {
    const res = run(60_000);
    expect(res.placedRound.get('b')).toBe(7);
    expect(res.switches).toBe(2); // to B for b, then back to A for the stream
    expect(res.placedRound.get('a6')).toBeGreaterThan(7); // held back while n1 drained
  });

  it('reports the reservation and keeps lower tasks off the drained node', () => {
    const nodes = [
      node('n1', { loadedModels: ['A'], runningTasks: 1, maxConcurrency: 4 }),
      node('n2', { loadedModels: ['A'], runningTasks: 3, maxConcurrency: 4 }),
    ];
    const queue = [task('b', 'B', { enqueuedAt: NOW - 200_000 }), task('a', 'A')];
    const result = plan({ nodes, queue });
    expect(result.draining).toEqual([{ nodeId: 'n1', taskId: 'b', model: 'B' }]);
    expect(result.placements).toEqual([{ taskId: 'a', nodeId: 'n2' }]);
  });

  it('does not drain when the model is already resident on an eligible node', () => {
    const nodes = [
      node('n1', { loadedModels: ['B'], runningTasks: 2 }),
      node('n2', { loadedModels: ['A'], runningTasks: 1 }),
    ];
    const queue = [task('b', 'B', { enqueuedAt: NOW - 200_000 }), task('a', 'A')];
    const result = plan({ nodes, queue });
    expect(result.draining).toEqual([]);
    expect(result.placements).toEqual([{ taskId: 'a', nodeId: 'n2' }]);
  });
});

describe('switch counting', () => {
  it('single plan: exactly one switch, on the node whose model nobody waits for', () => {
    const nodes = [
      node('n1', { loadedModels: ['A'] }),
      node('n2', { loadedModels: ['B'] }),
      node('n3', { loadedModels: ['C'] }),
    ];
    const queue = ['A', 'A', 'A', 'C', 'D'].map((m, i) => task(`t${i}`, m, { enqueuedAt: NOW + i }));
    const result = plan({ nodes, queue });
    expect(result.placements).toEqual([
      { taskId: 't0', nodeId: 'n1' },
      { taskId: 't1', nodeId: 'n1' },
      { taskId: 't2', nodeId: 'n2', switchModel: { from: ['B'], to: 'A' } },
      { taskId: 't3', nodeId: 'n3' },
    ]);
    expect(result.stillQueued).toEqual(['t4']); // D: no idle node left
  });

  it('over rounds: FIFO A,A,B,B,A on two one-slot nodes costs exactly four switches', () => {
    // r0: t0(A)->n1; t1(A) switches n2 B->A; t2,t3,t4 wait (no idle node).
    // r1: t2(B) switches n1 A->B (tie on id); t3(B) is ahead of t4 (FIFO) and switches n2 A->B.
    // r2: t4(A) switches n1 B->A.
    const queue = ['A', 'A', 'B', 'B', 'A'].map((m, i) => task(`t${i}`, m, { enqueuedAt: NOW + i }));
    const res = simulate({
      nodes: [
        node('n1', { loadedModels: ['A'], maxConcurrency: 1 }),
        node('n2', { loadedModels: ['B'], maxConcurrency: 1 }),
      ],
      models,
      arrivals: (r) => (r === 0 ? queue : []),
      duration: () => 1,
      rounds: 10,
      start: NOW,
      stopWhenEmptyAfter: 0,
    });
    expect(res.switches).toBe(4);
    expect(Object.fromEntries(res.placedRound)).toEqual({ t0: 0, t1: 0, t2: 1, t3: 1, t4: 2 });
  });

  it('a single slot alternating A,B,A,B switches on every task after the first', () => {
    const queue = ['A', 'B', 'A', 'B'].map((m, i) => task(`t${i}`, m, { enqueuedAt: NOW + i }));
    const res = simulate({
      nodes: [node('n1', { loadedModels: ['A'], maxConcurrency: 1 })],
      models,
      arrivals: (r) => (r === 0 ? queue : []),
      duration: () => 1,
      rounds: 10,
      start: NOW,
      stopWhenEmptyAfter: 0,
    });
    expect(res.switches).toBe(3);
  });
});
