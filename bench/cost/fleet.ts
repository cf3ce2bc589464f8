/**
 * The cost model: drives a simulated fleet through the embedded runtime with every port metered,
 * measures what each operation costs in AWS billing units, and multiplies by how often each
 * operation happens in a month.
 *
 * Why per operation and not a metered stretch of wall time: the operations are the same code
 * whatever the clock says, so one heartbeat of every node, one firing of every schedule and a
 * sample of tasks and container commands give their units exactly; their monthly counts follow
 * from the agent's real heartbeat interval (what register answers), the schedules' own expressions
 * and the profile's daily rates. A timed window would add the noise of a shared machine and
 * nothing else. Durations (GB-seconds) are the one measured time: each operation runs alone.
 */
import { randomUUID } from 'node:crypto';
import type { MemoryQueue } from '../../functions/adapters/memory-queue.js';
import { EVENTS_QUEUE } from '../../functions/core/events.js';
import { parseExpression } from '../../functions/core/schedule-expressions.js';
import {
  Meter,
  UNLABELLED,
  addUnits,
  zeroUnits,
  type MeterEntry,
  type Units,
} from '../../functions/metering/meter.js';
import {
  meterContext,
  meterEventHandlers,
  meterHttpHandler,
  type LambdaMetering,
  type MeteredStore,
} from '../../functions/metering/metered-ports.js';
import { APP_SCHEDULES } from '../../functions/schedules.js';
import { getNode } from '../../functions/nodes/nodes.js';
import { recordMetricHistory } from '../../functions/nodes/metric-history.js';
import type { TableRoute } from '../../functions/core/route.js';
import { Router } from '../../functions/core/router.js';
import { routes } from '../../functions/routes.js';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { call } from '../../test/harness/scripted-agent.js';
import {
  LAMBDA_MEMORY_MB,
  LAMBDA_SYSTEM_LOG_BYTES,
  LAMBDA_SYSTEM_LOG_LEVEL,
} from '../../lib/lambda-settings.js';
import { PRICES, SECONDS_PER_MONTH } from './prices.js';
import { SimNode, fixtureCollectors, type Hardware } from './sim-node.js';

const LAMBDA_PLATFORM_LOG_BYTES = LAMBDA_SYSTEM_LOG_BYTES[LAMBDA_SYSTEM_LOG_LEVEL];
/** The agent's SQS command channel long-polls 20 s (agent/channel.ts). */
const COMMAND_POLL_SECONDS = 20;
export const BUSY_PER_NODE_PER_DAY = { tasks: 1000, containerCommands: 100 };

export interface CostOptions {
  nodes: number;
  profile: 'idle' | 'busy';
  hardware: Hardware;
  /** Tasks and container start/stop pairs run to measure the busy profile. */
  taskSamples?: number;
  containerSamples?: number;
  /** Extra runtime settings. */
  env?: Record<string, string>;
  /** Memory (MB) per function, as the stack's `lambdaMemory` setting; the rest LAMBDA_MEMORY_MB. */
  memory?: Record<string, number>;
}

/** Units of one operation, the fields a reader compares. */
export interface OperationUnits {
  read_units: number;
  write_units: number;
  index_write_units: number;
  dynamo_calls: number;
  sqs_requests: number;
  http_requests: number;
  lambda_invocations: number;
  log_bytes: number;
}

export interface CostReport {
  nodes: number;
  profile: 'idle' | 'busy';
  gpus: number;
  hardware: string;
  heartbeat_interval_seconds: number;
  per_node_month_usd: number;
  items: Record<string, number>;
  units_per_operation: {
    heartbeat: OperationUnits;
    /** The metric history a heartbeat writes, per minute. */
    metric_history_minute: OperationUnits;
    task_submit?: OperationUnits;
    task_placement?: OperationUnits;
    /** Everything one task costs from submit to its result, heartbeats aside. */
    task_all_in?: OperationUnits;
    container_start?: OperationUnits;
    /** One start or stop and all that follows it. */
    container_command_all_in?: OperationUnits;
    sweeps: Record<string, OperationUnits>;
  };
  operations_per_node_month: Record<string, number>;
  notes: string[];
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function operationUnits(u: Units, per = 1): OperationUnits {
  return {
    read_units: round(u.readUnits / per),
    write_units: round(u.writeUnits / per),
    index_write_units: round(u.indexWriteUnits / per),
    dynamo_calls: round(u.dynamoCalls / per),
    sqs_requests: round(u.sqsRequests / per),
    http_requests: round(u.httpRequests / per),
    lambda_invocations: round(u.lambdaInvocations / per),
    log_bytes: Math.round(u.logBytes / per),
  };
}

/**
 * What an operation costs on AWS, from what the embedded runtime did:
 * - empty receives are left out: the events queue's poller is a per-deployment cost, and an idle
 *   node's command channel is charged at its long-poll rate instead;
 * - on AWS the agent receives and deletes its commands on its own SQS queue, so the embedded
 *   long-poll and ack routes count only their SQS calls (no API request, Lambda or table read);
 * - the local server's body gate (local/http-server.ts routeGate) checks a request's credential
 *   before any handler runs, outside every operation; API Gateway has no such step (the handler
 *   checks it again, and that read is counted), so unlabelled table and SSM reads are left out.
 */
export function awsCharged(e: MeterEntry): boolean {
  if (e.kind === 'sqs.receive.empty') return false;
  if (e.label === UNLABELLED && (e.kind.startsWith('dynamo.') || e.kind.startsWith('ssm.'))) return false;
  if (e.label === 'GET /agent/commands') return e.kind === 'sqs.receive';
  if (e.label === 'POST /agent/commands/ack') return e.kind.startsWith('sqs.');
  return true;
}

export interface Fleet {
  rt: Runtime;
  meter: Meter;
  store: MeteredStore;
  nodes: SimNode[];
  /** Waits until the events queue is empty (every event handled, follow-ups included). */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the runtime with every port metered and registers `count` simulated nodes (one heartbeat each). */
export async function startFleet(options: CostOptions): Promise<Fleet> {
  const meter = new Meter();
  const memory = options.memory ?? {};
  const router = new Router(routes);
  const memoryOf = (group: string | undefined) => (group && memory[group]) || LAMBDA_MEMORY_MB;
  const platformLogBytes = LAMBDA_PLATFORM_LOG_BYTES;
  const http: LambdaMetering = {
    memoryMb: (event) => {
      const match = router.match(event.requestContext.http.method, event.rawPath);
      return memoryOf(match.kind === 'found' ? (match.route as TableRoute).group : 'system');
    },
    platformLogBytes,
  };
  const eventsFn = { memoryMb: memoryOf('events'), platformLogBytes };
  let store: MeteredStore | undefined;
  let events: MemoryQueue | undefined;
  const id = randomUUID().slice(0, 8);
  const restoreLogs = meter.captureLogs({ swallow: true });
  let rt: Runtime;
  try {
    rt = await startRuntime({
      port: 0,
      env: { LOG_LEVEL: 'INFO', TABLE_NAME: `cost-${id}`, SCHEDULE_GROUP: `cost${id}`, ...options.env },
      instrument: {
        context: (ctx) => {
          events = ctx.queue as MemoryQueue;
          store = meterContext(ctx, meter);
        },
        http: (handler) => meterHttpHandler(handler, meter, http),
        events: (handlers) => meterEventHandlers(handlers, meter, eventsFn),
      },
    });
  } catch (error) {
    restoreLogs();
    throw error;
  }
  // Schedules fire only when the model fires them, one at a time.
  rt.driver.stop();

  const settle = async () => {
    const deadline = Date.now() + 30_000;
    while (events!.depth(EVENTS_QUEUE) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
  };

  const nodes: SimNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await rt.stop();
    restoreLogs();
  };
  try {
    await registerNodes(rt.url, options, nodes);
    await settle();
  } catch (error) {
    await stop();
    throw error;
  }
  return { rt, meter, store: store!, nodes, settle, stop };
}

async function registerNodes(url: string, options: CostOptions, nodes: SimNode[]): Promise<void> {
  const collectors = await fixtureCollectors(options.hardware);
  const jetson = options.hardware.kind === 'jetson';
  for (let i = 0; i < options.nodes; i += 10) {
    const batch = Array.from(
      { length: Math.min(10, options.nodes - i) },
      (_, j) =>
        new SimNode(url, `node-${String(i + j).padStart(5, '0')}`, collectors, jetson, {
          runMs: 0,
          pollWaitSeconds: 1,
        }),
    );
    await Promise.all(
      batch.map(async (n) => {
        await n.register();
        await n.heartbeat();
      }),
    );
    nodes.push(...batch);
  }
}

/** One heartbeat from every node, one after another; units per heartbeat. */
export async function measureHeartbeat(fleet: Fleet): Promise<Units> {
  // The first beat of a node's minute also writes its metric history point (measureHistory counts
  // it, per minute): of two rounds back to back at most one meets a minute boundary, the one
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

/**
 * The metric history a heartbeat writes once a minute (a point in the node's hour item, and each
 * 5 minutes the closed bucket's average in its 6-hour item), per minute: an hour of points written
 * minute by minute as the first beats of their minutes do, so each write is charged at the item's
 * size then (an update costs the larger of the item before and after).
 */
export async function measureHistory(fleet: Fleet): Promise<Units> {
  const ctx = fleet.rt.ctx;
  const node = (await getNode(ctx, fleet.nodes[0]!.nodeId))!;
  const metrics = node.metrics!;
  // A whole hour and its buckets, from the start of the next UTC hour (an item of its own).
  const hour = Math.ceil(ctx.now() / 3_600_000) * 3_600_000 + 3_600_000;
  fleet.meter.reset();
  await fleet.meter.within('metric history', async () => {
    for (let m = 0; m < 60; m++) {
      const at = hour + m * 60_000 + 1_000;
      const at0 = { ...ctx, now: () => at };
      await recordMetricHistory(at0, { ...node, lastHeartbeatMs: at - 60_000, metrics }, metrics);
    }
  });
  return divide(
    fleet.meter.total((e) => e.label === 'metric history'),
    60,
  );
}

/** Each app schedule fired once, as EventBridge Scheduler delivers it (an SQS message to the events queue). */
export async function measureSweeps(fleet: Fleet): Promise<Record<string, Units>> {
  const out: Record<string, Units> = {};
  for (const s of APP_SCHEDULES) {
    fleet.meter.reset();
    await fleet.meter.within(`schedule ${s.name}`, async () => {
      fleet.meter.add('scheduler.invoke', { schedulerInvocations: 1 });
      await fleet.rt.ctx.queue.send(EVENTS_QUEUE, s.payload);
    });
    await fleet.settle();
    out[s.name] = fleet.meter.total(awsCharged);
  }
  return out;
}

/** Fires one app schedule as EventBridge Scheduler would and waits for what follows (not metered apart). */
export async function fireSchedule(fleet: Fleet, name: string): Promise<void> {
  const s = APP_SCHEDULES.find((x) => x.name === name);
  if (!s) throw new Error(`no schedule ${name}`);
  await fleet.rt.ctx.queue.send(EVENTS_QUEUE, s.payload);
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
  for (const n of fleet.nodes) n.start();
  try {
    fleet.meter.reset();
    const finished = () => fleet.nodes.reduce((s, n) => s + n.finished, 0);
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
    for (let i = 0; i < containers; i++) {
      const started = await api('POST', `/containers/${image}/start`, { count: 1 });
      if (started.status !== 200) throw new Error(`start: ${started.status} ${JSON.stringify(started.body)}`);
      await fleet.settle();
      const [instanceId] = started.body.started as string[];
      const stopped = await api('POST', `/containers/${image}/stop`, { instanceId });
      if (stopped.status !== 200) throw new Error(`stop: ${stopped.status} ${JSON.stringify(stopped.body)}`);
      await fleet.settle();
    }
    const perContainerCommand = divide(fleet.meter.total(notHeartbeat), 2 * containers);
    const containerStart = divide(
      labelled(fleet.meter, (l) => l === startLabel),
      containers,
    );
    return { perTask, submit, placement, perContainerCommand, containerStart };
  } finally {
    await Promise.all(fleet.nodes.map((n) => n.stop()));
  }
}

function divide(u: Units, by: number): Units {
  return addUnits(zeroUnits(), u, 1 / by);
}

/** Firings of a schedule expression in 30 days. */
export function firingsPerMonth(expression: string): number {
  const trigger = parseExpression(expression);
  const start = new Date('2026-01-01T00:00:00Z');
  const end = start.getTime() + SECONDS_PER_MONTH * 1000;
  let count = 0;
  for (let at = trigger.next(start); at && at.getTime() <= end; at = trigger.next(at)) count++;
  return count;
}

/** Dollars per item for a month of units. */
export function price(u: Units, storedBytes: number): Record<string, number> {
  const GB = 1024 ** 3;
  return {
    'API Gateway HTTP API requests': u.httpRequests * PRICES.httpApiPerRequest,
    'Lambda requests': u.lambdaInvocations * PRICES.lambdaPerInvocation,
    'Lambda duration': u.lambdaGbSeconds * PRICES.lambdaPerGbSecond,
    'DynamoDB writes': u.writeUnits * PRICES.dynamoPerWriteUnit,
    'DynamoDB reads': u.readUnits * PRICES.dynamoPerReadUnit,
    'DynamoDB storage': (storedBytes / GB) * PRICES.dynamoPerGbMonth,
    SQS: u.sqsRequests * PRICES.sqsPerRequest,
    'EventBridge Scheduler': u.schedulerInvocations * PRICES.schedulerPerInvocation,
    'CloudWatch Logs': (u.logBytes / GB) * PRICES.logsPerGbIngested,
    'API Gateway WebSocket':
      u.wsMessages * PRICES.wsPerMessage + u.wsConnectionMinutes * PRICES.wsPerConnectionMinute,
    S3: u.s3WriteRequests * PRICES.s3PerWriteRequest + u.s3ReadRequests * PRICES.s3PerReadRequest,
  };
}

/** The whole model: measure, then a node-month. */
export async function runCostModel(options: CostOptions): Promise<CostReport> {
  const fleet = await startFleet(options);
  try {
    const n = options.nodes;
    const interval = fleet.nodes[0]!.heartbeatIntervalSeconds;
    const storedBytes = fleet.store.storedBytes();
    let heartbeat = await measureHeartbeat(fleet);
    const history = await measureHistory(fleet);
    const sweeps = await measureSweeps(fleet);
    let busy: BusySample | undefined;
    if (options.profile === 'busy') {
      busy = await measureBusy(fleet, options.taskSamples ?? 20, options.containerSamples ?? 5);
      // A busy node heartbeats its model servers too.
      heartbeat = await measureHeartbeat(fleet);
    }

    const ops: Record<string, number> = {
      heartbeats: SECONDS_PER_MONTH / interval,
      command_channel_polls: SECONDS_PER_MONTH / COMMAND_POLL_SECONDS,
      metric_history_minutes: SECONDS_PER_MONTH / 60,
    };
    const month = zeroUnits();
    addUnits(month, heartbeat, ops.heartbeats);
    addUnits(month, { sqsRequests: 1 }, ops.command_channel_polls);
    addUnits(month, history, ops.metric_history_minutes);
    for (const s of APP_SCHEDULES) {
      const firings = firingsPerMonth(s.expression);
      ops[`sweep ${s.name} (per fleet)`] = firings;
      addUnits(month, sweeps[s.name]!, firings / n);
    }
    if (busy) {
      ops.tasks = BUSY_PER_NODE_PER_DAY.tasks * 30;
      ops.container_commands = BUSY_PER_NODE_PER_DAY.containerCommands * 30;
      addUnits(month, busy.perTask, ops.tasks);
      addUnits(month, busy.perContainerCommand, ops.container_commands);
    }
    const items = price(month, storedBytes / n);
    const total = Object.values(items).reduce((s, v) => s + v, 0);
    return {
      nodes: n,
      profile: options.profile,
      gpus: options.hardware.kind === 'gpu' ? options.hardware.gpus : 1,
      hardware:
        options.hardware.kind === 'gpu'
          ? `${options.hardware.gpus}x H100 (recorded probe)`
          : 'Jetson Orin (fixtures)',
      heartbeat_interval_seconds: interval,
      per_node_month_usd: round(total, 4),
      items: Object.fromEntries(Object.entries(items).map(([k, v]) => [k, round(v, 4)])),
      units_per_operation: {
        heartbeat: operationUnits(heartbeat),
        metric_history_minute: operationUnits(history),
        ...(busy
          ? {
              task_submit: operationUnits(busy.submit),
              task_placement: operationUnits(busy.placement),
              task_all_in: operationUnits(busy.perTask),
              container_start: operationUnits(busy.containerStart),
              container_command_all_in: operationUnits(busy.perContainerCommand),
            }
          : {}),
        sweeps: Object.fromEntries(Object.entries(sweeps).map(([k, u]) => [k, operationUnits(u)])),
      },
      operations_per_node_month: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, round(v, 1)])),
      notes: [
        'us-east-1 list prices, no free tier (bench/cost/prices.ts)',
        `Lambda ${LAMBDA_MEMORY_MB} MB arm64${
          Object.keys(options.memory ?? {}).length
            ? ` except ${Object.entries(options.memory!)
                .map(([k, v]) => `${k} ${v} MB`)
                .join(', ')}`
            : ''
        }; duration measured on the embedded runtime (dynalite), each operation alone, not scaled by the CPU share a memory size gets`,
        `Lambda system log level ${LAMBDA_SYSTEM_LOG_LEVEL}: its own lines estimated at ${LAMBDA_PLATFORM_LOG_BYTES} bytes an invocation`,
        'each event handled counts as one Lambda invocation (SQS batches of up to 10 would share one)',
        `the agent's SQS command channel: one receive every ${COMMAND_POLL_SECONDS} s; the events queue poller is a per-deployment cost, left out`,
        'storage: the items after registration and one heartbeat; task history is not counted',
        ...(options.profile === 'busy'
          ? [
              'busy: units per task and per container command measured on a sample run one at a time, after one scheduled placement run (its fleet sample answers the wait estimates)',
            ]
          : []),
      ],
    };
  } finally {
    await fleet.stop();
  }
}
