/**
 * `npm run cost -- --nodes N --profile idle|busy --gpus G [--jetson] [--tasks K] [--containers C]
 *   [--heartbeat S --offline S] [--live L] [--progress FILE] [--json]`:
 * what one node costs a month on AWS, measured from the code's own calls (bench/cost/model.ts).
 * Fleets past 1,000 nodes register 1,000 (`--live`) and load the rest as records (bench/cost/fleet.ts).
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ROUTE_GROUPS } from '../../functions/groups/index.js';
import { parseLambdaMemory } from '../../lib/lambda-settings.js';
import { runCostModel, type CostReport } from './model.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10' },
    profile: { type: 'string', default: 'idle' },
    gpus: { type: 'string', default: '1' },
    jetson: { type: 'boolean', default: false },
    tasks: { type: 'string', default: '20' },
    containers: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    /** `agent=512,events=768`: the stack's lambdaMemory setting. */
    memory: { type: 'string', default: '' },
    /** NODE_HEARTBEAT_SECONDS and NODE_OFFLINE_AFTER_SECONDS of the deployment (defaults 30 and 90). */
    heartbeat: { type: 'string' },
    offline: { type: 'string' },
    /** Nodes registered and beating through the API (default up to 1,000); the rest loaded as records. */
    live: { type: 'string' },
    progress: { type: 'string' },
  },
});

/** Fleets past this many nodes register this many and load the rest. */
const DEFAULT_LIVE = 1000;

const positive = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${v}`);
    process.exit(2);
  }
  return n;
};
if (values.profile !== 'idle' && values.profile !== 'busy') {
  console.error(`--profile must be idle or busy, got ${values.profile}`);
  process.exit(2);
}

const nodes = positive('nodes', values.nodes);
const report = await runCostModel({
  nodes,
  live: values.live ? positive('live', values.live) : Math.min(nodes, DEFAULT_LIVE),
  ...(values.progress
    ? {
        progress: (line: string) => appendFileSync(values.progress!, `${new Date().toISOString()} ${line}\n`),
      }
    : {}),
  profile: values.profile,
  hardware: values.jetson ? { kind: 'jetson' } : { kind: 'gpu', gpus: positive('gpus', values.gpus) },
  taskSamples: positive('tasks', values.tasks),
  containerSamples: positive('containers', values.containers),
  memory: parseLambdaMemory(values.memory, [...ROUTE_GROUPS, 'events', 'websocket']),
  env: {
    ...(values.heartbeat ? { NODE_HEARTBEAT_SECONDS: String(positive('heartbeat', values.heartbeat)) } : {}),
    ...(values.offline ? { NODE_OFFLINE_AFTER_SECONDS: String(positive('offline', values.offline)) } : {}),
  },
});

if (values.json) console.log(JSON.stringify(report, null, 2));
else console.log(table(report));

function table(r: CostReport): string {
  const usd = (v: number) => `$${v.toFixed(4)}`;
  const lines = [
    `${r.nodes} nodes (${r.live_nodes} live), ${r.profile}, ${r.hardware}, heartbeat every ${r.heartbeat_interval_seconds} s`,
    '',
    'per node-month',
    ...Object.entries(r.items)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `  ${k.padEnd(46)} ${usd(v).padStart(10)}`),
    `  ${'total'.padEnd(46)} ${usd(r.per_node_month_usd).padStart(10)}`,
    '',
    'units per operation          read   write  (index)  calls   sqs  http  lambda  log bytes',
  ];
  const row = (name: string, u: CostReport['units_per_operation']['heartbeat']) =>
    `  ${name.padEnd(26)} ${String(u.read_units).padStart(6)} ${String(u.write_units).padStart(7)} ${String(
      u.index_write_units,
    ).padStart(8)} ${String(u.dynamo_calls).padStart(6)} ${String(u.sqs_requests).padStart(5)} ${String(
      u.http_requests,
    ).padStart(5)} ${String(u.lambda_invocations).padStart(7)} ${String(u.log_bytes).padStart(10)}`;
  const ops = r.units_per_operation;
  for (const [name, u] of Object.entries(ops)) if (name !== 'sweeps' && u) lines.push(row(name, u as never));
  for (const [name, u] of Object.entries(ops.sweeps)) lines.push(row(`sweep ${name}`, u));
  lines.push(
    '',
    'schedules, per deployment-month',
    ...Object.entries(r.schedules_usd_per_deployment_month).map(
      ([k, v]) => `  ${k.padEnd(46)} ${usd(v).padStart(10)}`,
    ),
  );
  lines.push('', ...r.notes.map((n) => `note: ${n}`));
  return lines.join('\n');
}
