/** The cost model's month: the measured operations (measure.ts) times how often each happens, priced. */
import { addUnits, zeroUnits } from '../../functions/metering/meter.js';
import { APP_SCHEDULES } from '../../functions/schedules.js';
import { LAMBDA_MEMORY_MB, LAMBDA_SYSTEM_LOG_LEVEL } from '../../lib/lambda-settings.js';
import { SECONDS_PER_MONTH } from './prices.js';
import { firingsPerMonth, operationUnits, price, round, type OperationUnits } from './charges.js';
import { LAMBDA_PLATFORM_LOG_BYTES, startFleet, type CostOptions } from './fleet.js';
import { measureBusy, measureHeartbeat, measureHistory, measureSweeps, type BusySample } from './measure.js';

/** The agent's SQS command channel long-polls 20 s (agent/channel.ts). */
const COMMAND_POLL_SECONDS = 20;
export const BUSY_PER_NODE_PER_DAY = { tasks: 1000, containerCommands: 100 };

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
    /** What metric history adds to the heartbeats, per minute. */
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
  /** Each app schedule's month for the whole deployment, whatever its size (the per-node items hold it divided by the fleet). */
  schedules_usd_per_deployment_month: Record<string, number>;
  /** The app schedules that fire every minute (one: functions/minute.ts). */
  every_minute_schedules: string[];
  /** Nodes registered and beating through the API; the rest of the fleet loaded as records (fleet.ts). */
  live_nodes: number;
  notes: string[];
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
    addUnits(month, history.perMinute, ops.metric_history_minutes);
    const deployment: Record<string, number> = {};
    for (const s of APP_SCHEDULES) {
      const firings = firingsPerMonth(s.expression);
      ops[`sweep ${s.name} (per fleet)`] = firings;
      addUnits(month, sweeps[s.name]!.perFiring, firings / n);
      const perMonth = Object.values(price(addUnits(zeroUnits(), sweeps[s.name]!.perFiring, firings), 0));
      deployment[s.name] = round(
        perMonth.reduce((a, b) => a + b, 0),
        4,
      );
    }
    if (busy) {
      ops.tasks = BUSY_PER_NODE_PER_DAY.tasks * 30;
      ops.container_commands = BUSY_PER_NODE_PER_DAY.containerCommands * 30;
      addUnits(month, busy.perTask, ops.tasks);
      addUnits(month, busy.perContainerCommand, ops.container_commands);
    }
    // Loaded nodes are written beneath the meter: the registered ones stand for every node.
    const items = price(month, storedBytes / fleet.nodes.length + history.storedBytes);
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
        metric_history_minute: operationUnits(history.perMinute),
        ...(busy
          ? {
              task_submit: operationUnits(busy.submit),
              task_placement: operationUnits(busy.placement),
              task_all_in: operationUnits(busy.perTask),
              container_start: operationUnits(busy.containerStart),
              container_command_all_in: operationUnits(busy.perContainerCommand),
            }
          : {}),
        sweeps: Object.fromEntries(Object.entries(sweeps).map(([k, u]) => [k, operationUnits(u.perFiring)])),
      },
      operations_per_node_month: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, round(v, 1)])),
      schedules_usd_per_deployment_month: deployment,
      every_minute_schedules: APP_SCHEDULES.filter(
        (s) => firingsPerMonth(s.expression) >= SECONDS_PER_MONTH / 60,
      ).map((s) => s.name),
      live_nodes: fleet.nodes.length,
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
        `storage: the items after registration and one heartbeat, and a node's full metric history (${Math.round(history.storedBytes / 1024)} KB); task history is not counted`,
        "each schedule fired twice, each firing metered alone: the sweep repairs the node indexes at most every 5 minutes, so a fifth of the minute schedule's firings are charged as the repairing one",
        ...(fleet.nodes.length < n
          ? [
              `${fleet.nodes.length} nodes registered and live (their heartbeats, history and work measured); the other ${n - fleet.nodes.length} loaded as the records registration and a heartbeat leave (BatchWriteItem, not metered), online throughout (offline window ${fleet.rt.ctx.config.NODE_OFFLINE_AFTER_SECONDS} s: the interval stays ${interval} s), swept, indexed and counted by every schedule`,
            ]
          : []),
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
