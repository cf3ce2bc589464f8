/**
 * What each operation costs in DynamoDB units, measured through the embedded runtime with the
 * agent's own heartbeat code (npm run cost). Counts, not dollars: a change that makes a heartbeat,
 * a task or a container start read or write more fails here, and the numbers move on purpose only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  fireSchedule,
  measureBusy,
  measureHeartbeat,
  operationUnits,
  startFleet,
  type Fleet,
} from '../../../bench/cost/fleet.js';

const dynamo = (u: ReturnType<typeof operationUnits>) => ({
  read_units: u.read_units,
  write_units: u.write_units,
  index_write_units: u.index_write_units,
});

describe('units per operation (the cost model)', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  async function measure(nodes: number, gpus: number, tasks: number, containers: number) {
    fleet = await startFleet({ nodes, profile: 'busy', hardware: { kind: 'gpu', gpus } });
    const idleBeat = operationUnits(await measureHeartbeat(fleet));
    // A deployment up for a minute: the scheduled placement run has written its fleet sample.
    await fireSchedule(fleet, 'placement-run');
    const busy = await measureBusy(fleet, tasks, containers);
    const out = {
      heartbeat: dynamo(idleBeat),
      task_submit: dynamo(operationUnits(busy.submit)),
      task_placement: dynamo(operationUnits(busy.placement)),
      container_start: dynamo(operationUnits(busy.containerStart)),
    };
    await fleet.stop();
    fleet = undefined;
    return out;
  }

  it('a heartbeat, a task submit, a task placement and a container start at 3 nodes', async () => {
    const m = await measure(3, 1, 4, 2);
    // A heartbeat writes only the node's liveness record (one unit, on no index): its metrics did not
    // move, so they are not stored again. It reads the node (credential) and its liveness and metrics.
    expect(m.heartbeat).toEqual({ read_units: 2, write_units: 1, index_write_units: 0 });
    // A submit and a container start each write one audit record (a state-changing user call);
    // the fixed floor of the sharded node list (9 queries) shows in small fleets.
    expect(m.task_submit).toEqual({ read_units: 3, write_units: 4, index_write_units: 2 });
    // A placement reads the queue, the held slots, the catalogue and its candidates from the
    // free-capacity index (13 read units when it read every node). Which runs find the resident
    // node's slot free again moves a lookup (0.5) between runs; the free-capacity index adds the
    // writes of a node leaving it when full and coming back on release.
    expect(m.task_placement.read_units).toBeLessThanOrEqual(8);
    expect(m.task_placement.write_units).toBeLessThanOrEqual(12);
    expect(m.task_placement.index_write_units).toBeLessThanOrEqual(6);
    expect(m.container_start).toEqual({ read_units: 15.5, write_units: 9, index_write_units: 4 });
  }, 120_000);

  it('a heartbeat, a task submit and a task placement flat from 10 to 50 nodes; container start reads still grow', async () => {
    const small = await measure(10, 1, 3, 1);
    const large = await measure(50, 1, 3, 1);
    for (const op of ['task_submit', 'container_start'] as const) {
      expect(large[op].write_units).toBe(small[op].write_units);
      expect(large[op].index_write_units).toBe(small[op].index_write_units);
    }
    // Issue 16: nothing a heartbeat or a submit reads grows with the fleet (the submit's wait
    // estimate reads the latest fleet sample and the task-stats counters, not the nodes or a day of tasks).
    expect(large.heartbeat).toEqual(small.heartbeat);
    expect(large.task_submit.read_units).toBe(small.task_submit.read_units);
    // A placement reads candidates from the free-capacity index (here the node with the model
    // resident), not the fleet: flat.
    // (The node list cost 0.25 read units per node: 10 over these 40.)
    expect(Math.abs(large.task_placement.read_units - small.task_placement.read_units)).toBeLessThanOrEqual(
      1,
    );
    // Not yet flat: a container start reads every node's records twice (the reconciler's node
    // list): 0.225-0.275 read units per added node as measured.
    const slope = (large.container_start.read_units - small.container_start.read_units) / 40;
    // 0.3 before the node records were split (the whole node item per read).
    expect(slope).toBeGreaterThan(0);
    expect(slope).toBeLessThanOrEqual(0.3);
  }, 300_000);
});
