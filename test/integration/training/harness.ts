/**
 * Shared pieces of the training suites: a runtime with names of its own, a launcher that records
 * instead of reaching the fleet, a webhook receiver on loopback.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContainerSpec } from '../../../protocol/commands.js';
import type { Placement, RunAsk, RunLauncher } from '../../../functions/ports/run-launcher.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { uniqueName } from '../../harness/services.js';

export { call, eventually } from '../../harness/scripted-agent.js';

const quiet = { LOG_LEVEL: 'SILENT' };

export const embeddedEnv = { ...quiet, AWS_ENDPOINT_URL: undefined };

export function emulatorEnv(endpoint: string | undefined) {
  return {
    ...quiet,
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };
}

/** A runtime whose table, queues, schedule group and bucket belong to this call only. */
export function startTrainingRuntime(
  env: Record<string, string | undefined>,
  options: { now?: () => number; scheduleRefreshMs?: number } = {},
): Promise<Runtime> {
  const id = uniqueName('tr');
  return startRuntime({
    port: 0,
    scheduleRefreshMs: options.scheduleRefreshMs ?? 200,
    ...(options.now ? { now: options.now } : {}),
    env: {
      // The suites' webhook receivers listen on loopback.
      OUTBOUND_ALLOWLIST: '127.0.0.1',
      ...env,
      TABLE_NAME: id,
      QUEUE_PREFIX: `${id}-`,
      SCHEDULE_GROUP: id,
      ARTIFACTS_BUCKET: id,
      SECRETS_PREFIX: `/${id}/`,
    },
  });
}

export interface Launch {
  at: number;
  nodeId: string;
  spec: ContainerSpec;
  commandId: string;
}

/** Places every run on `node-1` (or `on`, when set; or nowhere, while `full`) and records the starts. */
export class RecordingLauncher implements RunLauncher {
  readonly launches: Launch[] = [];
  readonly removed: string[] = [];
  full = false;
  /** A registered node to place on, for the suites that read runs by node. */
  on: string | undefined;
  readonly offline = new Set<string>();
  private readonly sent = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  async choose(_ask: RunAsk, avoid: readonly string[]): Promise<Placement> {
    if (this.full) return { reason: 'no online node has the free capacity asked (1 GPU)' };
    if (this.on) return { nodeId: this.on };
    return { nodeId: avoid.includes('node-1') ? 'node-2' : 'node-1' };
  }

  async start(nodeId: string, spec: ContainerSpec, commandId: string): Promise<void> {
    // The fleet sends a command id once; so does this.
    if (this.sent.has(commandId)) return;
    this.sent.add(commandId);
    this.launches.push({ at: this.now(), nodeId, spec, commandId });
  }

  async remove(_nodeId: string, instanceId: string): Promise<void> {
    this.removed.push(instanceId);
  }

  async alive(nodeId: string): Promise<boolean> {
    return !this.offline.has(nodeId);
  }

  install(rt: Runtime): this {
    rt.ctx.launcher = this;
    return this;
  }
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP receiver on 127.0.0.1 that records what it is sent; `failFirst` answers 503 that many times. */
export async function webhookReceiver(options: { failFirst?: number } = {}): Promise<{
  url: string;
  received: Received[];
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  let failures = options.failFirst ?? 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failures > 0) {
        failures--;
        res.writeHead(503).end();
        return;
      }
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A valid create body; override what the test is about. */
export function jobBody(overrides: Record<string, unknown> = {}) {
  return {
    name: uniqueName('job'),
    image: 'gcr.io/my-project/trainer:latest',
    command: ['python', 'train.py', '--epochs', '100'],
    schedule: '0 2 * * *',
    max_retries: 3,
    checkpoint_path: '/checkpoints/resnet50',
    ...overrides,
  };
}
