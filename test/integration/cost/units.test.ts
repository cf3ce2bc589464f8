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
  measureHistory,
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
    const history = operationUnits((await measureHistory(fleet)).perMinute);
    // A deployment up for a minute: the scheduled placement run has written its fleet sample.
    await fireSchedule(fleet, 'minute');
    const busy = await measureBusy(fleet, tasks, containers);
    const out = {
      heartbeat: dynamo(idleBeat),
      metric_history_minute: dynamo(history),
      task_submit: dynamo(operationUnits(busy.submit)),
      task_placement: dynamo(operationUnits(busy.placement)),
      container_start: dynamo(operationUnits(busy.containerStart)),
      task_all_in: dynamo(operationUnits(busy.perTask)),
    };
    await fleet.stop();
    fleet = undefined;
    return out;
  }

  it('a heartbeat, a task submit, a task placement and a container start at 3 nodes', async () => {
    const m = await measure(3, 1, 4, 2);
    // A heartbeat writes only the node's liveness record (one unit, on no index): its metrics did not
    // move, so they are not stored again. It reads the node (credential, once: the check before
    // the body is read serves the handler) and its liveness and metrics.
    expect(m.heartbeat).toEqual({ read_units: 1, write_units: 1, index_write_units: 0 });
    // Metric history rides on that write (the points of 10 minutes on the liveness record, which
    // stays one unit); every 10 minutes they are written out in one item and their two 5-minute
    // averages into the hour's item: 2 units in 10 minutes, no read (1.617 a minute before).
    expect(m.metric_history_minute).toEqual({ read_units: 0, write_units: 0.2, index_write_units: 0 });
    // A submit and a container start each write one audit record (a state-changing user call);
    // the fixed floor of the sharded node list (9 queries) shows in small fleets.
    // Its queue position reads the per-second queue records ahead and a count of its own second
    // (queue-position.ts: one count of every task ahead before, 3 units here, growing with the
    // queue), and its wait estimate's capacity the fleet sample, else the sweep's aggregate and
    // the held slots: no node is read. One write unit is the queue's counter (task-counts.ts),
    // which lets queue lengths and depths read 8 small records instead of the queue; one its
    // second's queue record (placement takes it off again).
    expect(m.task_submit).toEqual({ read_units: 3.5, write_units: 6, index_write_units: 2 });
    // A placement reads the queue, the catalogue and its candidates (their own slots) from the
    // free-capacity index (13 read units when it read every node). Which runs find the resident
    // node's slot free again moves a lookup (0.5) between runs; the free-capacity index adds the
    // writes of a node leaving it when full and coming back on release. Taking the task off its
    // second's queue record is one write, and one more when that empties it (each task here has a
    // second of its own): 10.25 write units before those records. The slot's gsi2 copy by model
    // (busy candidates without the fleet's held slots) is one more: 12.25 before it. A task the run
    // read alone in its second (each here) takes its record off with one conditional delete, not a
    // decrement and a delete: 12.5 measured in two runs (13.5 before).
    expect(m.task_placement.read_units).toBeLessThanOrEqual(8);
    expect(m.task_placement.write_units).toBeLessThanOrEqual(12.5);
    expect(m.task_placement.index_write_units).toBeLessThanOrEqual(6);
    // A task all in (submit, placement, its run command and result, progress, finish with its
    // counters and statistics): 38.5 in two runs, 41.5 before three changes of one unit each: the
    // placement's counter delete above; a progress report past 0 reads the running task (a read
    // unit) instead of losing markStarted's condition (a write unit); a finish no longer writes
    // an hour record of its own for "the last 24 hours" (they read the fleet's TASKRATE hours).
    expect(m.task_all_in.write_units).toBeLessThanOrEqual(38.75);
    expect(m.task_all_in.index_write_units).toBe(15);
    // A container start reads its image's nodes and the eligible-node index (8 shard lookups at
    // this size, by the preflight and again by the reconcile) with each candidate's copies, and
    // the image's instance counters (one query, half a unit: the reconcile's recount).
    // 27.5 measured in two runs (27 and 27.5 before; half a unit: one lookup more or less). Two write
    // units are the new copy's counters, fleet and image (instance-counts.ts), which let counts
    // and GET /images read a few small records instead of the instances.
    expect(m.container_start.read_units).toBeGreaterThanOrEqual(27.5);
    expect(m.container_start.read_units).toBeLessThanOrEqual(28.5);
    expect(m.container_start.write_units).toBe(11);
    expect(m.container_start.index_write_units).toBe(4);
  }, 120_000);

  it('a heartbeat, a task submit, a task placement and a container start flat from 10 to 50 nodes', async () => {
    const small = await measure(10, 1, 3, 1);
    const large = await measure(50, 1, 3, 1);
    for (const op of ['task_submit', 'container_start'] as const) {
      expect(large[op].write_units).toBe(small[op].write_units);
      expect(large[op].index_write_units).toBe(small[op].index_write_units);
    }
    // Issue 16: nothing a heartbeat or a submit reads grows with the fleet (the submit's wait
    // estimate reads the latest fleet sample and the task-stats counters, not the nodes or a day of tasks).
    expect(large.heartbeat).toEqual(small.heartbeat);
    expect(large.metric_history_minute).toEqual(small.metric_history_minute);
    expect(large.task_submit.read_units).toBe(small.task_submit.read_units);
    // A placement reads candidates from the free-capacity index (here the node with the model
    // resident), not the fleet: flat.
    // (The node list cost 0.25 read units per node: 10 over these 40.)
    expect(Math.abs(large.task_placement.read_units - small.task_placement.read_units)).toBeLessThanOrEqual(
      1,
    );
    // A container start reads its image's nodes and a page of the eligible-node index (16 nodes),
    // not the fleet: 10 nodes fit one page, 50 fill it, and the page's size is the ceiling
    // (it read 0.225-0.275 read units per added node before: about 10 more here).
    // 10 nodes fit one page, 50 fill it (55 and 74 read units as measured); past the page it stays
    // (scale-reads.test.ts: the same at 200 and 800 nodes). It read 0.225-0.275 units per node before.
    expect(large.container_start.read_units).toBeGreaterThanOrEqual(small.container_start.read_units);
    expect(large.container_start.read_units).toBeLessThanOrEqual(80);
  }, 300_000);
});
