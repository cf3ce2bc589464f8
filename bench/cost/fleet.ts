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
 *
 * This file starts the metered fleet; measure.ts measures the operations, model.ts makes a month
 * of them, charges.ts prices it.
 */
import { randomUUID } from 'node:crypto';
import type { MemoryQueue } from '../../functions/adapters/memory-queue.js';
import { EVENTS_QUEUE } from '../../functions/core/events.js';
import { Meter } from '../../functions/metering/meter.js';
import {
  meterContext,
  meterEventHandlers,
  meterHttpHandler,
  type LambdaMetering,
  type MeteredStore,
} from '../../functions/metering/metered-ports.js';
import type { TableRoute } from '../../functions/core/route.js';
import { Router } from '../../functions/core/router.js';
import { routes } from '../../functions/routes.js';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import {
  LAMBDA_MEMORY_MB,
  LAMBDA_SYSTEM_LOG_BYTES,
  LAMBDA_SYSTEM_LOG_LEVEL,
} from '../../lib/lambda-settings.js';
import { SimNode, fixtureCollectors, type Hardware } from './sim-node.js';
import { loadNodeRecords } from './load-nodes.js';
import { CANDIDATE_PAGE } from '../../functions/cluster/workers.js';
import { NODE_PAGE } from '../../functions/orchestrator/fleet-state.js';
import { SHARDS, nodeShard } from '../../functions/nodes/node-records.js';

export { awsCharged, operationUnits, type OperationUnits } from './charges.js';
export { fireSchedule, measureBusy, measureHeartbeat, measureHistory, measureSweeps } from './measure.js';

export const LAMBDA_PLATFORM_LOG_BYTES = LAMBDA_SYSTEM_LOG_BYTES[LAMBDA_SYSTEM_LOG_LEVEL];

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
  /**
   * Nodes registered through the API and beating (default all): the rest of `nodes` are loaded as
   * records (load-nodes.ts), so a fleet of 100,000 exists in minutes, not hours. Busy: every shard
   * needs a candidate page of live nodes (livePagesFirst).
   */
  live?: number;
  /** Progress lines of a long run (loading), to a file: the runtime swallows output while it runs. */
  progress?: (line: string) => void;
}

/** The offline window of a fleet with loaded nodes: they never beat, and must stay online while measured. */
export const LOADED_FLEET_OFFLINE_SECONDS = 6 * 3600;

export interface Fleet {
  rt: Runtime;
  meter: Meter;
  store: MeteredStore;
  nodes: SimNode[];
  hardware: Hardware;
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
  const live = Math.min(options.nodes, options.live ?? options.nodes);
  const loaded = options.nodes - live;
  const restoreLogs = meter.captureLogs({ swallow: true });
  let rt: Runtime;
  try {
    rt = await startRuntime({
      port: 0,
      env: {
        LOG_LEVEL: 'INFO',
        TABLE_NAME: `cost-${id}`,
        SCHEDULE_GROUP: `cost${id}`,
        // Loaded nodes never beat: a wide window keeps them online (the interval stays the lesser of 30 s and a third of it).
        ...(loaded ? { NODE_OFFLINE_AFTER_SECONDS: String(LOADED_FLEET_OFFLINE_SECONDS) } : {}),
        ...options.env,
      },
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

  // A sweep of a large fleet runs as a chain of invocations (10,000 records each, seconds apiece here).
  const settleMs = Math.max(30_000, options.nodes * 5);
  const settle = async () => {
    const deadline = Date.now() + settleMs;
    while (events!.depth(EVENTS_QUEUE) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
  };

  const nodes: SimNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await rt.stop();
    restoreLogs();
  };
  const fleet: Fleet = { rt, meter, store: store!, nodes, hardware: options.hardware, settle, stop };
  try {
    await registerNodes(rt.url, { ...options, nodes: live }, nodes);
    await settle();
    if (loaded && options.profile === 'busy') livePagesFirst(nodes);
    if (loaded) {
      const started = Date.now();
      options.progress?.(`loading ${loaded} node records`);
      await loadNodeRecords(fleet, loaded, LOADED_PREFIX, { progress: options.progress });
      options.progress?.(`loaded ${loaded} node records in ${Math.round((Date.now() - started) / 1000)} s`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return fleet;
}

/**
 * Loaded node ids: after every registered one (`node-…`) in a shard's node-id order, which is the
 * order the placement's free-capacity pages and a container start's eligible-node pages read in.
 */
const LOADED_PREFIX = 'zz-loaded';

/**
 * A busy fleet with loaded nodes: a task or container must go to a node whose agent runs it. The
 * candidate pages (CANDIDATE_PAGE and NODE_PAGE nodes, from a shard's start) then hold live nodes
 * only when every shard has that many live nodes before its loaded ones; the pages read the same
 * units whoever is on them.
 */
function livePagesFirst(nodes: SimNode[]): void {
  const page = Math.max(CANDIDATE_PAGE, NODE_PAGE);
  for (const shard of SHARDS) {
    const here = nodes.filter((n) => nodeShard(n.nodeId) === shard).length;
    if (here < page)
      throw new Error(
        `a busy fleet with loaded nodes needs ${page} live nodes in every shard (shard ${shard} has ${here}): raise --live`,
      );
  }
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
