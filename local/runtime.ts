import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { awsCredentialsInEnv, loadConfig } from '../functions/core/config.js';
import type { AppContext } from '../functions/core/context.js';
import { emit, EVENTS_QUEUE, processDirectEvent } from '../functions/core/events.js';
import { createHttpHandler } from '../functions/core/http.js';
import { eventHandlers } from '../functions/event-handlers.js';
import { routes } from '../functions/routes.js';
import { redeliverPendingCommands } from '../functions/nodes/commands.js';
import { resumeInterruptedCopies } from '../functions/orchestrator/resume.js';
import { APP_SCHEDULES, ensureAppSchedules } from '../functions/schedules.js';
import { createEmbeddedContext } from './embedded-context.js';
import { EventPump } from './event-pump.js';
import { createLocalServer, routeGate, type LambdaHttpHandler } from './http-server.js';
import { consoleStatic } from './console-static.js';
import { ScheduleDriver } from './schedule-driver.js';
import type { EventHandler } from '../functions/core/events.js';
import type { ScheduleSpec } from '../functions/ports/scheduler.js';
import { LocalSockets, attachWebSockets } from './websocket-server.js';

export interface RuntimeOptions {
  port?: number;
  host?: string;
  /** Folder for state that survives restarts; none keeps everything in memory. */
  dataDir?: string;
  env?: Record<string, string | undefined>;
  now?: () => number;
  scheduleRefreshMs?: number;
  /** Wraps the ports, the HTTP handler and the event handlers (the cost meter: bench/cost). */
  instrument?: Instrument;
  /**
   * Event batches handled at once (default 1), as Lambda runs several for one SQS queue: the
   * handlers are idempotent and conditional, so they may overlap.
   */
  eventWorkers?: number;
}

export interface Instrument {
  /** Called once the context is complete, before anything serves: may replace its ports in place. */
  context?(ctx: AppContext): void;
  http?(handler: LambdaHttpHandler): LambdaHttpHandler;
  events?(handlers: Record<string, EventHandler>): Record<string, EventHandler>;
}

export interface Runtime {
  url: string;
  ctx: AppContext;
  driver: ScheduleDriver;
  /**
   * Delivers one firing as EventBridge Scheduler does: an app schedule marked `direct` invokes the
   * event handler at once (a failure throws), any other schedule is a message on the events queue.
   */
  deliver(schedule: Pick<ScheduleSpec, 'name' | 'payload'>): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The whole control plane in one process: the HTTP API (the Lambda handlers behind a local
 * server), the event worker, and the schedule driver. Embedded adapters by default; the AWS
 * adapters at AWS_ENDPOINT_URL when it is set.
 */
export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const env = options.env ?? process.env;
  const config = loadConfig(env);
  // No AWS credentials and no endpoint: the SDK's credential chain must not go asking the
  // instance metadata service (shared config files still work).
  if (!config.AWS_ENDPOINT_URL && !awsCredentialsInEnv(process.env))
    process.env.AWS_EC2_METADATA_DISABLED ??= 'true';
  const stops: (() => Promise<void>)[] = [];
  try {
    let ctx: AppContext;
    if (config.AWS_ENDPOINT_URL) {
      const { createAwsContext, ensureAwsResources } = await import('../functions/core/aws-context.js');
      ctx = createAwsContext(config, { mode: 'emulator', now: options.now });
      await ensureAwsResources(ctx);
    } else {
      const embedded = await createEmbeddedContext(config, { dataDir: options.dataDir, now: options.now });
      ctx = embedded.ctx;
      stops.push(embedded.stop);
    }
    // A previous run may have died mid-command: the embedded queue starts empty, and a command
    // recorded but not yet sent (any queue) would stay pending; a copy recorded without its start
    // command would wait forever. Both are sent now, before anything else writes.
    await redeliverPendingCommands(ctx);
    await resumeInterruptedCopies(ctx);
    await ctx.queue.ensure({ name: EVENTS_QUEUE, visibilityTimeoutSeconds: 60, maxReceiveCount: 5 });
    // Events in flight died with a previous run's in-process queue: one full reconcile catches up.
    if (!config.AWS_ENDPOINT_URL) await emit(ctx, { type: 'reconcile' });
    await ensureAppSchedules(ctx);

    const sockets = ctx.connections instanceof LocalSockets ? ctx.connections : new LocalSockets();
    ctx.connections = sockets;
    options.instrument?.context?.(ctx);

    const plain = createHttpHandler({ routes, context: async () => ctx, corsOrigins: config.CORS_ORIGINS });
    const handler: LambdaHttpHandler = options.instrument?.http?.(plain) ?? plain;
    const server: Server = createLocalServer(
      handler,
      routeGate(routes, async () => ctx),
      consoleStatic(),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 8000, options.host ?? '127.0.0.1', () => resolve());
    });
    stops.unshift(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );

    // WebSockets on the same port; closed before the HTTP server, which does not track upgraded sockets.
    const webSockets = attachWebSockets(server, ctx, sockets);
    stops.unshift(() => webSockets.stop());

    const handlers = options.instrument?.events?.(eventHandlers) ?? eventHandlers;
    for (let i = 0; i < Math.max(1, options.eventWorkers ?? 1); i++) {
      const pump = new EventPump(ctx, handlers);
      pump.start();
      stops.unshift(() => pump.stop());
    }

    const direct = new Set(APP_SCHEDULES.filter((s) => s.direct).map((s) => s.name));
    const deliver = async (schedule: Pick<ScheduleSpec, 'name' | 'payload'>) => {
      if (direct.has(schedule.name))
        await processDirectEvent(JSON.parse(schedule.payload), randomUUID(), handlers, ctx);
      else await ctx.queue.send(EVENTS_QUEUE, schedule.payload);
    };
    const driver = new ScheduleDriver({
      scheduler: ctx.scheduler,
      now: ctx.now,
      logger: ctx.logger,
      refreshMs: options.scheduleRefreshMs,
      fire: deliver,
    });
    driver.start();
    stops.unshift(async () => driver.stop());

    const address = server.address() as AddressInfo;
    const host = address.address.includes(':') ? `[${address.address}]` : address.address;
    return {
      url: `http://${host}:${address.port}`,
      ctx,
      driver,
      deliver,
      stop: async () => {
        for (const stop of stops) await stop();
      },
    };
  } catch (error) {
    for (const stop of stops) await stop().catch(() => undefined);
    throw error;
  }
}
