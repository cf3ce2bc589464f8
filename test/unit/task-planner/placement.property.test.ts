import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  planPlacements,
  type SchedNode,
  type SchedTask,
} from '../../../functions/task-planner/index.js';
import { checkPlan, modelsArb, nodesArb, NOW, optionsArb, simulate, tasksArb } from './support.js';

const scenario = (taskOpts: Parameters<typeof tasksArb>[1] = {}) =>
  modelsArb.chain((models) =>
    fc.record({
      models: fc.constant(models),
      nodes: nodesArb(models),
      queue: tasksArb(models, taskOpts),
      options: optionsArb,
    }),
  );

describe('planPlacements properties', () => {
  // checkPlan covers: offline nodes, maxConcurrency, GPU memory, switch only on idle nodes,
  // requirements, drained nodes, timeouts, bookkeeping, and the strict priority rule.
  it('every plan satisfies the invariants', () => {
    fc.assert(
      fc.property(scenario({ timeouts: true, requirements: true, ghost: true }), (s) => {
        const input = { ...s, now: NOW };
        checkPlan(input, planPlacements(input));
      }),
      { numRuns: 500 },
    );
  });

  it('never places on an offline node', () => {
    fc.assert(
      fc.property(scenario(), (s) => {
        const offline = new Set(s.nodes.filter((n) => !n.online).map((n) => n.id));
        const plan = planPlacements({ ...s, now: NOW });
        expect(plan.placements.filter((p) => offline.has(p.nodeId))).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('never exceeds GPU memory or maxConcurrency', () => {
    fc.assert(
      fc.property(scenario({ requirements: true }), (s) => {
        const plan = planPlacements({ ...s, now: NOW });
        const mem = new Map(s.models.map((m) => [m.id, m.gpuMemoryMb]));
        for (const node of s.nodes) {
          const mine = plan.placements.filter((p) => p.nodeId === node.id);
          expect(node.runningTasks + mine.length).toBeLessThanOrEqual(
            Math.max(node.maxConcurrency, node.runningTasks),
          );
          const last = mine.filter((p) => p.switchModel).at(-1)?.switchModel;
          const loaded = last ? [last.to] : node.loadedModels;
          const used = loaded.reduce((sum, m) => sum + (mem.get(m) ?? 0), 0);
          expect(used).toBeLessThanOrEqual(node.gpuMemoryTotalMb);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic and independent of input order', () => {
    fc.assert(
      fc.property(scenario({ timeouts: true, requirements: true }), fc.nat(), (s, seed) => {
        const shuffle = <T>(xs: readonly T[]): T[] => {
          const out = [...xs];
          let x = seed + 1;
          for (let i = out.length - 1; i > 0; i--) {
            x = (x * 1103515245 + 12345) % 2 ** 31;
            const j = x % (i + 1);
            [out[i], out[j]] = [out[j] as T, out[i] as T];
          }
          return out;
        };
        const a = planPlacements({ ...s, now: NOW });
        const b = planPlacements({ ...s, nodes: shuffle(s.nodes), queue: shuffle(s.queue), now: NOW });
        expect(b.placements).toEqual(a.placements);
        expect(b.stillQueued).toEqual(a.stillQueued);
        expect(b.draining).toEqual(a.draining);
        expect(new Set(b.timedOut)).toEqual(new Set(a.timedOut));
      }),
      { numRuns: 200 },
    );
  });

  it('every queued task is eventually placed when capacity exists', () => {
    const arb = modelsArb.chain((models) =>
      fc.record({
        models: fc.constant(models),
        nodes: nodesArb(models, { allOnline: true }),
        waves: fc.array(tasksArb(models, { maxLength: 8 }), { minLength: 1, maxLength: 4 }),
        durations: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 16 }),
        options: optionsArb,
      }),
    );
    fc.assert(
      fc.property(arb, ({ models, nodes, waves, durations, options }) => {
        const mem = new Map(models.map((m) => [m.id, m.gpuMemoryMb]));
        const canRun = (t: SchedTask, ns: SchedNode[]) =>
          ns.some(
            (n) =>
              n.maxConcurrency > 0 &&
              (mem.get(t.model) ?? 0) <= n.gpuMemoryTotalMb - options.memoryHeadroomMb,
          );
        // Arrivals: wave w lands in round w with fresh ids; only tasks some node can run.
        const arrivals = (round: number): SchedTask[] =>
          (waves[round] ?? [])
            .map((t) => ({ ...t, id: `w${round}-${t.id}`, enqueuedAt: 1_000_000 + round * 10_000 }))
            .filter((t) => canRun(t, nodes));
        const total = waves.reduce((sum, _w, r) => sum + arrivals(r).length, 0);
        const duration = (t: SchedTask) => durations[Number(t.id.split('t')[1]) % durations.length] ?? 1;
        // Initial running tasks have no modelled completion, so start every node idle.
        const idle = nodes.map((n) => ({ ...n, runningTasks: 0 }));
        const bound = waves.length + 4 * total + 4;
        const res = simulate({
          nodes: idle,
          models,
          arrivals,
          duration,
          rounds: bound,
          options,
          stopWhenEmptyAfter: waves.length,
        });
        expect(res.queue).toEqual([]);
        expect(res.placedRound.size).toBe(total);
      }),
      { numRuns: 200 },
    );
  });
});
