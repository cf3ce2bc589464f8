/**
 * The operations of the cost model, each measured alone on the metered fleet (fleet.ts): a
 * heartbeat, an hour of metric history, each schedule's sweep, a sample of tasks and container commands.
 */
import {
  addUnits,
  zeroUnits,
  type Meter,
  type MeterEntry,
  type Units,
} from '../../functions/metering/meter.js';
import { APP_SCHEDULES } from '../../functions/schedules.js';
import { MINUTE_PARTS, MINUTE_SCHEDULE, duePartsAt } from '../../functions/minute.js';
import { getNodeRecord, recordHeartbeat } from '../../functions/nodes/nodes.js';
import { advanceHistory } from '../../functions/nodes/metric-history.js';
import { liveKey, type LiveRecord } from '../../functions/nodes/node-records.js';
import { itemSize } from '../../functions/core/item-size.js';
import { call } from '../../test/harness/scripted-agent.js';
import { awsCharged, divide, firingsPerMonth } from './charges.js';
import { SECONDS_PER_MONTH } from './prices.js';
import { INDEX_REPAIR_EVERY_MS } from '../../functions/nodes/eligible-index.js';
import type { ScheduleSpec } from '../../functions/ports/scheduler.js';
import type { Fleet } from './fleet.js';
import { startAgentsApart } from './agents-apart.js';

/** One heartbeat from every node, one after another; units per heartbeat. */
export async function measureHeartbeat(fleet: Fleet): Promise<Units> {
  // The first beat of a node's 5 minutes also writes its metric history out (measureHistory counts
  // it, per minute): of two rounds back to back at most one meets a 5-minute boundary, the one
  // that writes less is the beat alone.
  const round = async () => {
    fleet.meter.reset();
    for (const n of fleet.nodes) await n.heartbeat();
    await fleet.settle();
    return divide(fleet.meter.total(awsCharged), fleet.nodes.length);
  };
  const first = await round();
  const second = await round();
  return second.writeUnits < first.writeUnits ? second : first;
}

export interface HistorySample {
  /** What metric history adds to the heartbeats, per minute. */
  perMinute: Units;
  /** Bytes one node's history holds once it is full (24 h of points, 30 days of averages). */
  storedBytes: number;
}

const HOUR_MS = 3_600_000;
/** DynamoDB's storage overhead per item. */
const ITEM_OVERHEAD = 100;

/**
 * What metric history adds to a node's heartbeats: an hour of one node's heartbeats at its
 * interval on a clock moved on (the heartbeat's store path, as the route calls it, with the
 * agent's own heartbeat body), each metered alone. The cheapest beat is a beat without history;
 * whatever the hour's beats spent beyond that many cheapest beats is history (the points written
 * out every 5 minutes, and any growth of the liveness record they ride on), per minute.
 */
export async function measureHistory(fleet: Fleet): Promise<HistorySample> {
  const ctx = fleet.rt.ctx;
  const sim = fleet.nodes[0]!;
  const node = (await getNodeRecord(ctx, sim.nodeId))!;
  const body = await sim.heartbeatRequest();
  const lk = liveKey(sim.nodeId);
  const saved = (await ctx.store.get<LiveRecord>(lk.pk, lk.sk))!;
  const interval = sim.heartbeatIntervalSeconds * 1000;
  const beats = Math.round(HOUR_MS / interval);
  const each: Units[] = [];
  for (let i = 1; i <= beats; i++) {
    const at = saved.lastHeartbeatMs + i * interval;
    const shifted = { ...ctx, now: () => at };
    fleet.meter.reset();
    await fleet.meter.within('metric history', () =>
      recordHeartbeat(shifted, node, body, undefined, (buffer) =>
        advanceHistory(shifted, node, buffer, body.metrics),
      ),
    );
    each.push(fleet.meter.total((e) => e.label === 'metric history'));
  }
  const total = zeroUnits();
  for (const u of each) addUnits(total, u);
  const cheapest = zeroUnits();
  for (const name of Object.keys(cheapest) as (keyof Units)[])
    cheapest[name] = Math.min(...each.map((u) => u[name]));
  const perMinute = divide(addUnits(total, cheapest, -beats), (beats * interval) / 60_000);

  // A full bucket item and a full hour of averages, as stored; kept 24 h and 30 days.
  const { items } = await ctx.store.query(`NODEMETRICS#${sim.nodeId}`);
  const size = (prefix: string) =>
    Math.max(0, ...items.filter((i) => i.sk.startsWith(prefix)).map((i) => itemSize(i))) + ITEM_OVERHEAD;
  const storedBytes = size('F#') * (24 * 12 + 1) + size('A#') * (30 * 24 + 1);
  // The node as it was: its liveness record back, nothing of the hour counted elsewhere.
  await ctx.store.put(saved);
  fleet.meter.reset();
  return { perMinute, storedBytes };
}

export interface ScheduleSample {
  /** A month's firing on average: `repair` for the share of firings that repair the node indexes. */
  perFiring: Units;
  /** The firing that also repaired the eligible-node and free-capacity indexes (the sweep does at most every 5 minutes). */
  repair: Units;
  /** A firing without that repair. */
  plain: Units;
  /** Of a month's firings, the share that repair: 1 for a schedule at 5 minutes or slower. */
  repairShare: number;
}

/** The first minute (in ms since the epoch, within a day) at which exactly `parts` are due. */
function minuteWith(fleet: Fleet, parts: string[]): number | undefined {
  for (let m = 1; m <= 1440; m++) {
    const due = duePartsAt(fleet.rt.ctx, m * 60_000).map((p) => p.name as string);
    if (due.length === parts.length && parts.every((p) => due.includes(p))) return m * 60_000;
  }
  return undefined;
}

/** `a - b`, none below zero (a duration measured twice may come out shorter). */
function minus(a: Units, b: Units): Units {
  const out = zeroUnits();
  for (const k of Object.keys(out) as (keyof Units)[]) out[k] = Math.max(0, a[k] - b[k]);
  return out;
}

/**
 * Each app schedule fired twice, as EventBridge Scheduler delivers it (the minute schedule straight
 * into the events function, the others as an SQS message to the events queue), each firing metered alone. The sweep repairs the node indexes on its first run in a
 * process and then at most every INDEX_REPAIR_EVERY_MS: of two firings back to back the costlier is
 * the repairing one, the other the plain one, weighted by how many of a month's firings repair.
 * The minute schedule is fired at a minute with no part due; each part (functions/minute.ts
 * MINUTE_PARTS) is then measured as a firing at a minute where only it is due, less a plain one,
 * and added at its share of firings (1 in `every`). Each part is listed as `minute/<part>`.
 */
export async function measureSweeps(fleet: Fleet): Promise<Record<string, ScheduleSample>> {
  const out: Record<string, ScheduleSample> = {};
  const once = async (s: ScheduleSpec, payload = s.payload) => {
    fleet.meter.reset();
    await fleet.meter.within(`schedule ${s.name}`, async () => {
      fleet.meter.add('scheduler.invoke', { schedulerInvocations: 1 });
      await fleet.rt.deliver({ name: s.name, payload });
    });
    await fleet.settle();
    return fleet.meter.total(awsCharged);
  };
  const tick = (at: number) => JSON.stringify({ ...(JSON.parse(MINUTE_SCHEDULE_PAYLOAD()) as object), at });
  for (const s of APP_SCHEDULES) {
    const isMinute = s.name === MINUTE_SCHEDULE;
    const payload = isMinute ? tick(minuteWith(fleet, []) ?? 0) : s.payload;
    const [a, b] = [await once(s, payload), await once(s, payload)];
    const [repair, plain] = a.readUnits >= b.readUnits ? [a, b] : [b, a];
    const periodMs = (SECONDS_PER_MONTH * 1000) / firingsPerMonth(s.expression);
    const repairShare = Math.min(1, periodMs / INDEX_REPAIR_EVERY_MS);
    const perFiring = addUnits(addUnits(zeroUnits(), repair, repairShare), plain, 1 - repairShare);
    if (isMinute) {
      for (const part of MINUTE_PARTS) {
        // A minute where the part is due with the fewest others, less one where only those others are.
        const every = part.every(fleet.rt.ctx);
        const withIt = Array.from({ length: 1440 / every }, (_, i) => (i + 1) * every * 60_000)
          .map((at) => duePartsAt(fleet.rt.ctx, at).map((p) => p.name as string))
          .sort((x, y) => x.length - y.length)[0]!;
        const at = minuteWith(fleet, withIt)!;
        const without = minuteWith(
          fleet,
          withIt.filter((n) => n !== part.name),
        );
        if (without === undefined) throw new Error(`no minute without ${part.name} to measure it against`);
        const marginal = minus(await once(s, tick(at)), await once(s, tick(without)));
        const share = 1 / part.every(fleet.rt.ctx);
        addUnits(perFiring, marginal, share);
        out[`${s.name}/${part.name}`] = {
          perFiring: marginal,
          repair: marginal,
          plain: marginal,
          repairShare: share,
        };
      }
    }
    out[s.name] = { perFiring, repair, plain, repairShare };
  }
  return out;
}

const MINUTE_SCHEDULE_PAYLOAD = () => APP_SCHEDULES.find((s) => s.name === MINUTE_SCHEDULE)!.payload;

/** Fires one app schedule as EventBridge Scheduler would and waits for what follows (not metered apart). */
export async function fireSchedule(fleet: Fleet, name: string): Promise<void> {
  const s = APP_SCHEDULES.find((x) => x.name === name);
  if (!s) throw new Error(`no schedule ${name}`);
  await fleet.rt.deliver(s);
  await fleet.settle();
}

export interface BusySample {
  perTask: Units;
  submit: Units;
  placement: Units;
  perContainerCommand: Units;
  containerStart: Units;
}

const labelled = (meter: Meter, test: (label: string) => boolean) =>
  meter.total((e) => awsCharged(e) && test(e.label));

/** Runs `tasks` tasks and `containers` container start/stop pairs one at a time through the nodes. */
export async function measureBusy(fleet: Fleet, tasks: number, containers: number): Promise<BusySample> {
  const api = (method: string, path: string, body?: unknown) => call(fleet.rt.url, method, path, body);
  const notHeartbeat = (e: MeterEntry) => awsCharged(e) && e.label !== 'POST /agent/heartbeat';
  // The agents run apart (agents-apart.ts): measured durations are the control plane's own.
  const agents = await startAgentsApart(fleet, fleet.hardware);
  try {
    fleet.meter.reset();
    const finished = () => agents.finished();
    const base = finished();
    for (let i = 0; i < tasks; i++) {
      const res = await api('POST', '/tasks', {
        task_type: 'image_generation',
        model_name: 'SDXL_4GB_FP8.safetensors',
        parameters: { prompt: 'a lighthouse at dusk', width: 512, height: 512, steps: 10 },
        priority: 'normal',
      });
      if (res.status !== 200) throw new Error(`POST /tasks: ${res.status} ${JSON.stringify(res.body)}`);
      const deadline = Date.now() + 30_000;
      while (finished() < base + i + 1) {
        if (Date.now() > deadline) throw new Error(`task ${String(res.body.task_id)} did not finish`);
        await new Promise((r) => setTimeout(r, 5));
      }
      await fleet.settle();
    }
    const perTask = divide(fleet.meter.total(notHeartbeat), tasks);
    const submit = divide(
      labelled(fleet.meter, (l) => l === 'POST /tasks'),
      tasks,
    );
    const placement = divide(
      labelled(fleet.meter, (l) => l === 'event placement.run'),
      tasks,
    );

    fleet.meter.reset();
    const image = 'cost-bench/web:1';
    const startLabel = `POST /containers/${image}/start`;
    // 202: the node had not confirmed within the route's wait (a loaded machine); the command goes on.
    const accepted = (status: number) => status === 200 || status === 202;
    for (let i = 0; i < containers; i++) {
      const started = await api('POST', `/containers/${image}/start`, { count: 1 });
      if (!accepted(started.status))
        throw new Error(`start: ${started.status} ${JSON.stringify(started.body)}`);
      await fleet.settle();
      const [instanceId] = started.body.started as string[];
      const stopped = await api('POST', `/containers/${image}/stop`, { instanceId });
      if (!accepted(stopped.status))
        throw new Error(`stop: ${stopped.status} ${JSON.stringify(stopped.body)}`);
      await fleet.settle();
    }
    const perContainerCommand = divide(fleet.meter.total(notHeartbeat), 2 * containers);
    const containerStart = divide(
      labelled(fleet.meter, (l) => l === startLabel),
      containers,
    );
    return { perTask, submit, placement, perContainerCommand, containerStart };
  } finally {
    await agents.stop();
  }
}
