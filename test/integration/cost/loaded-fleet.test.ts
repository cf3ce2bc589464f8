/**
 * `npm run cost` past 1,000 idle nodes: some nodes registered and beating, the rest loaded as records
 * (bench/cost/load-nodes.ts). The live nodes' operations are measured as in a fleet of their own;
 * the schedules run over every node, loaded ones included.
 */
import { describe, expect, it } from 'vitest';
import { runCostModel } from '../../../bench/cost/model.js';
import { startFleet } from '../../../bench/cost/fleet.js';

const gpu = { kind: 'gpu', gpus: 1 } as const;

describe('the cost model with loaded nodes', () => {
  it('measures beats on the live nodes and sweeps the whole fleet', async () => {
    const small = await runCostModel({ nodes: 10, profile: 'idle', hardware: gpu });
    const loaded = await runCostModel({ nodes: 210, live: 10, profile: 'idle', hardware: gpu });
    expect(small.live_nodes).toBe(10);
    expect(loaded.live_nodes).toBe(10);
    expect(loaded.nodes).toBe(210);
    // A beat is the same whatever the fleet holds.
    expect(loaded.units_per_operation.heartbeat).toMatchObject({ read_units: 1, write_units: 1 });
    expect(loaded.units_per_operation.heartbeat.read_units).toBe(
      small.units_per_operation.heartbeat.read_units,
    );
    // The minute's sweep reads the loaded nodes' records too (its shard queries page through them),
    // in one invocation still at this size.
    const minute = (r: typeof small) => r.units_per_operation.sweeps.minute!;
    expect(minute(loaded).read_units).toBeGreaterThan(minute(small).read_units);
    expect(minute(loaded).lambda_invocations).toBe(1);
    // Per node, the schedules' share falls with the fleet: the deployment's month spread over 210.
    expect(loaded.items['EventBridge Scheduler']).toBeLessThan(small.items['EventBridge Scheduler']!);
    expect(loaded.notes.some((n) => n.includes('200 loaded'))).toBe(true);
  }, 180_000);

  it('refuses a busy fleet with loaded nodes unless every shard has a candidate page of live nodes', async () => {
    // Fewer: a task or a container could go to a loaded node, which no agent runs.
    await expect(startFleet({ nodes: 20, live: 10, profile: 'busy', hardware: gpu })).rejects.toThrow(
      /needs 16 live nodes in every shard/,
    );
  });
});
