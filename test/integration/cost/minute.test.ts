/**
 * The every-minute schedule (functions/minute.ts): one firing, one invocation, and in it the node
 * sweep with its reconcile, the placement safety net with the minute's fleet sample, and the live
 * push; the cost model counts that one schedule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { fireSchedule, startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { runCostModel } from '../../../bench/cost/model.js';
import { samplesSince } from '../../../functions/cluster/metrics.js';
import { MINUTE_SCHEDULE, RETIRED_SCHEDULES, runMinute } from '../../../functions/minute.js';
import { getNode } from '../../../functions/nodes/nodes.js';
import { liveKey, type LiveRecord } from '../../../functions/nodes/node-records.js';
import { APP_SCHEDULES } from '../../../functions/schedules.js';
import { startRuntime } from '../../../local/runtime.js';
import { eventually } from '../../harness/scripted-agent.js';

const EVERY_MINUTE = 'rate(1 minute)';

describe('the minute schedule', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  it('is the only app schedule every minute, and the runtime holds none of the three it replaced', async () => {
    expect(APP_SCHEDULES.filter((s) => s.expression === EVERY_MINUTE).map((s) => s.name)).toEqual([
      MINUTE_SCHEDULE,
    ]);
    fleet = await startFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    expect(await fleet.rt.ctx.scheduler.get(MINUTE_SCHEDULE)).toMatchObject({ expression: EVERY_MINUTE });
    for (const name of RETIRED_SCHEDULES) expect(await fleet.rt.ctx.scheduler.get(name)).toBeUndefined();
  }, 60_000);

  it('is fired into the events function directly, not through the events queue; a failed tick throws', async () => {
    const minute = APP_SCHEDULES.find((s) => s.name === MINUTE_SCHEDULE)!;
    expect(minute.direct).toBe(true);
    fleet = await startFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const sent: string[] = [];
    const queue = fleet.rt.ctx.queue;
    const send = queue.send.bind(queue);
    queue.send = async (name, body, options) => {
      sent.push(body);
      return send(name, body, options);
    };
    fleet.meter.reset();
    await fleet.rt.deliver(minute);
    expect(fleet.meter.count('event minute.tick', 'event')).toBe(1);
    expect(sent.filter((b) => b.includes('minute.tick'))).toEqual([]);
    // The maintenance schedule still goes through the queue (its Lambda retries are SQS redeliveries).
    const maintenance = APP_SCHEDULES.find((s) => !s.direct)!;
    await fleet.rt.deliver(maintenance);
    expect(sent).toContain(maintenance.payload);
    await fleet.stop();
    fleet = undefined;

    // A tick that fails rejects the delivery (on AWS: Lambda's retries, then the dead-letter queue).
    const rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'SILENT' },
      instrument: {
        events: (handlers) => ({
          ...handlers,
          'minute.tick': () => Promise.reject(new Error('the sweep failed')),
        }),
      },
    });
    try {
      rt.driver.stop();
      await expect(rt.deliver(minute)).rejects.toThrow('the sweep failed');
    } finally {
      await rt.stop();
    }
  }, 60_000);

  it('sweeps a silent node offline, reconciles, places and samples in one invocation', async () => {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const ctx = fleet.rt.ctx;
    const [silent, beating] = fleet.nodes.map((n) => n.nodeId) as [string, string];
    // One node last beat 10 minutes ago (offline after 90 s).
    const k = liveKey(silent);
    await ctx.store.update<LiveRecord>(k.pk, k.sk, { set: { lastHeartbeatMs: ctx.now() - 600_000 } });
    const since = ctx.now() - 60_000;
    expect(await samplesSince(ctx, since)).toHaveLength(0);

    fleet.meter.reset();
    await fireSchedule(fleet, MINUTE_SCHEDULE);

    // One invocation of the minute's event, none of the three schedules' events nor a separate reconcile.
    expect(fleet.meter.count('event minute.tick', 'event')).toBe(1);
    for (const type of ['nodes.sweep', 'reconcile', 'placement.run', 'ws.push'])
      expect(fleet.meter.count(`event ${type}`, 'event'), type).toBe(0);
    // The sweep: the silent node went offline (and its node.offline event ran), the other stayed.
    const status = async (id: string) => (await getNode(ctx, id))?.status;
    expect(await status(silent)).toBe('offline');
    expect(await status(beating)).toBe('online');
    expect(fleet.meter.count('event node.offline', 'event')).toBe(1);
    // The placement safety net: the minute's fleet sample, counting the one node online.
    const samples = await samplesSince(ctx, since);
    expect(samples).toHaveLength(1);
    expect(samples[0]).toMatchObject({ onlineNodes: 1, queuedTasks: 0, runningTasks: 0 });
  }, 60_000);

  it('pushes /ws/metrics frames on Lambda only while a connection can be open', async () => {
    // The local server's own push timer out of the way: only the minute's push sends.
    fleet = await startFleet({
      nodes: 1,
      profile: 'idle',
      hardware: { kind: 'gpu', gpus: 1 },
      env: { WS_PUSH_INTERVAL_SECONDS: '3600', API_AUTH: 'false' },
    });
    const onLambda = { ...fleet.rt.ctx, mode: 'lambda' as const };
    // Nobody has connected: no frame is built, no channel is queried.
    // Minute 1 since the epoch: no training repair or spot migration due.
    expect(await runMinute(onLambda, 60_000)).toEqual({
      sweep: 'done',
      placement: 'done',
      push: 'skipped',
      parts: {},
    });

    const frames: { type?: string }[] = [];
    const ws = new WebSocket(`${fleet.rt.url.replace(/^http/, 'ws')}/ws/metrics`);
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as { type?: string }));
    try {
      await eventually(async () => expect(frames.length).toBeGreaterThanOrEqual(1), 10_000);
      const before = frames.length;
      // Off Lambda the local timer pushes, not the minute.
      expect((await runMinute(fleet.rt.ctx)).push).toBe('off lambda');
      expect(await runMinute(onLambda, 60_000)).toEqual({
        sweep: 'done',
        placement: 'done',
        push: 'done',
        parts: {},
      });
      await eventually(async () => expect(frames.length).toBeGreaterThan(before), 10_000);
      expect(frames.at(-1)).toMatchObject({ type: frames[0]!.type });
    } finally {
      ws.close();
    }
  }, 60_000);

  it('the cost model counts one every-minute schedule, from APP_SCHEDULES', async () => {
    const report = await runCostModel({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    expect(report.every_minute_schedules).toEqual([MINUTE_SCHEDULE]);
    const perFleet = Object.keys(report.operations_per_node_month).filter((k) => k.startsWith('sweep '));
    expect(perFleet.sort()).toEqual(APP_SCHEDULES.map((s) => `sweep ${s.name} (per fleet)`).sort());
    expect(report.operations_per_node_month[`sweep ${MINUTE_SCHEDULE} (per fleet)`]).toBe(43_200);
    // One firing: one Scheduler invocation and one Lambda invocation; no SQS message (it targets
    // the events function itself: the send, receive and delete of the events queue before).
    expect(report.units_per_operation.sweeps[MINUTE_SCHEDULE]).toMatchObject({
      sqs_requests: 0,
      lambda_invocations: 1,
    });
    expect(Object.keys(report.schedules_usd_per_deployment_month)).toContain(MINUTE_SCHEDULE);
    // The training repair and the spot migration run inside the tick: no Scheduler, SQS or Lambda of their own.
    for (const part of ['training-repair', 'novita-spot-migration'])
      expect(report.units_per_operation.sweeps[`${MINUTE_SCHEDULE}/${part}`]).toMatchObject({
        sqs_requests: 0,
        lambda_invocations: 0,
      });
  }, 120_000);
});
