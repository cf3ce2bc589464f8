import { describe, expect, it } from 'vitest';
import {
  BACKOFF_MAX_MS,
  backoffDelayMs,
  backoffReason,
  nextBackoff,
} from '../../../functions/orchestrator/backoff.js';
import { planReconcile, type PlanInput } from '../../../functions/orchestrator/plan.js';

const NOW = 10_000_000;
const MIN = 60_000;

describe('restart backoff', () => {
  it('waits 10 s, then doubles per failure in a row, capped at 5 minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 12].map((a) => backoffDelayMs(a) / 1000)).toEqual([
      10, 20, 40, 80, 160, 300, 300, 300,
    ]);
    expect(backoffDelayMs(40)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelayMs(3, 1000)).toBe(4000);
  });

  it('counts failures in a row; a copy that ran 10 minutes starts the count again', () => {
    const died = { status: 'exited' as const, diedAt: NOW };
    expect(nextBackoff({ ...died, previousFailures: 0 })).toEqual({
      reason: 'crash_loop',
      attempt: 1,
      since: NOW,
      nextTryAt: NOW + 10_000,
    });
    expect(nextBackoff({ ...died, previousFailures: 3, runningSince: NOW - 2 * MIN })).toMatchObject({
      attempt: 4,
      nextTryAt: NOW + 80_000,
    });
    expect(nextBackoff({ ...died, previousFailures: 3, runningSince: NOW - 10 * MIN })).toMatchObject({
      attempt: 1,
      nextTryAt: NOW + 10_000,
    });
  });

  it('names a failed pull image_pull_failed and everything else crash_loop', () => {
    expect(backoffReason('failed', 'image ghost:1 is not on this node and could not be pulled: 404')).toBe(
      'image_pull_failed',
    );
    expect(backoffReason('failed', 'image not found')).toBe('image_pull_failed');
    expect(backoffReason('failed', 'port is already allocated')).toBe('crash_loop');
    expect(backoffReason('exited', undefined)).toBe('crash_loop');
  });

  it('the planner leaves a failed or exited copy in its slot until the backoff ends, then replaces it', () => {
    const base: PlanInput = {
      now: NOW,
      nodes: [{ id: 'a', online: true, capacity: { cpu: 4, memoryMb: 8192, diskGb: 0, gpus: 0 } }],
      services: [
        { imageId: 'crashy:1', desiredCount: 1, reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 } },
      ],
      slots: [
        {
          imageId: 'crashy:1',
          ordinal: 0,
          instanceId: 'i1',
          nodeId: 'a',
          claimedAt: NOW - MIN,
          backoffUntil: NOW + 5000,
        },
      ],
      instances: [
        {
          instanceId: 'i1',
          imageId: 'crashy:1',
          nodeId: 'a',
          status: 'exited',
          reserve: { cpu: 0, memoryMb: 0, diskGb: 0, gpus: 0 },
        },
      ],
    };
    const waiting = planReconcile(base);
    expect(waiting.actions).toEqual([]);
    expect(waiting.unplaced).toEqual([
      { imageId: 'crashy:1', ordinal: 0, reason: `backing off until ${new Date(NOW + 5000).toISOString()}` },
    ]);
    const due = planReconcile({ ...base, now: NOW + 5000 });
    expect(due.actions).toEqual([
      { type: 'place', imageId: 'crashy:1', ordinal: 0, nodeId: 'a', replaces: 'i1' },
      { type: 'retire', imageId: 'crashy:1', instanceId: 'i1', nodeId: 'a', from: 'exited' },
    ]);
    // A copy lost with its node is not a crash: it moves at once.
    const offline = planReconcile({
      ...base,
      nodes: [...base.nodes.map((n) => ({ ...n, online: false })), { ...base.nodes[0]!, id: 'b' }],
      instances: [{ ...base.instances[0]!, status: 'running' }],
    });
    expect(offline.actions[0]).toMatchObject({ type: 'place', nodeId: 'b', replaces: 'i1' });
  });
});
