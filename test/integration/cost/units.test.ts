/**
 * What each operation costs in DynamoDB units, measured through the embedded runtime with the
 * agent's own heartbeat code (npm run cost). Counts, not dollars: a change that makes a heartbeat,
 * a task or a container start read or write more fails here, and the numbers move on purpose only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
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
    // A heartbeat rewrites the whole node item (2 units) and its gsi1 copy (2 more).
    expect(m.heartbeat).toEqual({ read_units: 1.5, write_units: 4, index_write_units: 2 });
    // A submit and a container start each write one audit record (a state-changing user call).
    expect(m.task_submit).toEqual({ read_units: 3.625, write_units: 4, index_write_units: 2 });
    expect(m.task_placement).toEqual({ read_units: 5, write_units: 9.5, index_write_units: 5.25 });
    expect(m.container_start).toEqual({ read_units: 7.5, write_units: 9, index_write_units: 4 });
  }, 120_000);

  it('task submit, placement and container start: writes flat from 10 to 50 nodes, reads still grow', async () => {
    const small = await measure(10, 1, 3, 1);
    const large = await measure(50, 1, 3, 1);
    for (const op of ['task_submit', 'task_placement', 'container_start'] as const) {
      expect(large[op].write_units).toBe(small[op].write_units);
      expect(large[op].index_write_units).toBe(small[op].index_write_units);
    }
    // Issue 16 wants these flat. Today each reads every node item: a submit once, a placement and a
    // container start twice (0.15 read units per node item of ~1.2 KB, eventually consistent).
    const perAddedNode = (f: (m: typeof small) => number) =>
      Math.round(((f(large) - f(small)) / 40) * 1000) / 1000;
    expect({
      task_submit: perAddedNode((m) => m.task_submit.read_units),
      task_placement: perAddedNode((m) => m.task_placement.read_units),
      container_start: perAddedNode((m) => m.container_start.read_units),
    }).toEqual({ task_submit: 0.15, task_placement: 0.3, container_start: 0.3 });
    expect([small.task_submit.read_units, large.task_submit.read_units]).toEqual([4.667, 10.667]);
    expect([small.task_placement.read_units, large.task_placement.read_units]).toEqual([7, 19]);
  }, 300_000);
});
