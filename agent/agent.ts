import Docker from 'dockerode';
import type { CommandChannel as ChannelConfig } from '../protocol/messages.js';
import { Backoff, sleep } from './backoff.js';
import { createChannel, runCommandLoop, sameChannel, type CommandChannel } from './channel.js';
import { ControlPlaneClient } from './client.js';
import type { AgentConfig } from './config.js';
import { DockerEngine } from './engine/docker.js';
import { ProcessEngine } from './engine/process.js';
import type { EngineCapabilities, EngineDriver } from './engine/types.js';
import { OutputFollower } from './follow.js';
import { EventReporter } from './events.js';
import { CommandExecutor } from './executor.js';
import { Heartbeat } from './heartbeat.js';
import { CommandJournal } from './journal.js';
import { createLogger, type Logger } from './log.js';
import { KeyedMutex } from './mutex.js';
import { buildRegisterRequest, collectNodeMetrics, defaultCollectors, type Collectors } from './node.js';
import { Registrar } from './register.js';
import { statePaths, takeRestartMarker } from './state.js';
import { TaskRunner } from './tasks.js';
import { DEFAULT_POLICY } from './policy.js';
import { AGENT_VERSION } from './version.js';
import { ExitWatcher } from './watcher.js';
import { CheckpointSync } from './checkpoints.js';
import type { SqsApi } from './sqs-client.js';
import { IdleCollector } from './idle-gc.js';

export interface AgentDeps {
  /** Defaults to dockerode's own resolution: DOCKER_HOST, else /var/run/docker.sock. */
  docker?: Docker;
  collectors?: Collectors;
  logger?: Logger;
  sqsClient?: SqsApi;
  /** Safety-net scan interval of the exit watcher. */
  watchPollMs?: number;
  /** Called once everything runs (tests wait on it). */
  onReady?: (info: { nodeId: string; engine: EngineCapabilities }) => void;
}

/** Where dockerode will connect, for the log (it resolves DOCKER_HOST the way the docker CLI does). */
export function describeEngineEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_HOST'] || 'unix:///var/run/docker.sock (default)';
}

/** Pings until the engine answers; null if `signal` aborted first. */
async function waitForEngine(
  engine: EngineDriver,
  signal: AbortSignal,
  log: Logger,
): Promise<EngineCapabilities | null> {
  const backoff = new Backoff({ baseMs: 1_000, maxMs: 30_000 });
  for (let failures = 0; !signal.aborted; failures++) {
    try {
      await engine.ping(signal);
      return await engine.capabilities();
    } catch (error) {
      if (signal.aborted) break;
      if (failures === 0 || failures % 10 === 9) {
        log.warn('container engine unreachable; retrying', {
          endpoint: describeEngineEndpoint(),
          failures: failures + 1,
          error,
        });
      }
      await sleep(backoff.next(), signal);
    }
  }
  return null;
}

/**
 * The agent: engine, registration, then four loops until `signal` aborts — command channel,
 * heartbeat, exit watcher, event delivery. Stopping leaves every container running.
 */
export async function runAgent(
  config: AgentConfig,
  signal: AbortSignal,
  deps: AgentDeps = {},
): Promise<void> {
  const log =
    deps.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat, fields: { node: config.nodeName } });
  const collectors = deps.collectors ?? defaultCollectors;
  log.info('agent starting', {
    version: AGENT_VERSION,
    url: config.url,
    stateDir: config.stateDir,
    engine:
      config.driver === 'process'
        ? 'process driver'
        : deps.docker
          ? 'client given by the caller'
          : describeEngineEndpoint(),
  });

  const jetson = await collectors.jetson().catch(() => null);
  let engine: EngineDriver;
  let engineSocket: string | undefined;
  if (config.driver === 'process') {
    const gpus = await collectors.gpus().catch(() => []);
    engine = new ProcessEngine({
      nodeName: config.nodeName,
      root: statePaths(config.stateDir).processes,
      logger: log,
      gpuCount: gpus.length,
    });
  } else {
    const docker = deps.docker ?? new Docker();
    engineSocket = (docker.modem as { socketPath?: string }).socketPath;
    engine = new DockerEngine(docker, {
      nodeName: config.nodeName,
      logger: log,
      jetson: jetson !== null,
    });
  }
  const caps = await waitForEngine(engine, signal, log);
  if (!caps) return;

  const journal = await CommandJournal.open(statePaths(config.stateDir).journal, {
    onCorrupt: (aside, error) =>
      log.error('journal unreadable; set aside, starting empty', { aside, error: String(error) }),
  });
  const client = new ControlPlaneClient({
    baseUrl: config.url,
    logger: log,
    ...(config.apiKey ? { apiKey: config.apiKey } : {}),
    ...(config.joinToken ? { joinToken: config.joinToken } : {}),
  });

  let channel: CommandChannel | null = null;
  let channelConfig: ChannelConfig | null = null;
  const registrar = new Registrar({
    client,
    stateDir: config.stateDir,
    url: config.url,
    nodeName: config.nodeName,
    logger: log,
    buildRequest: () =>
      buildRegisterRequest(
        {
          nodeName: config.nodeName,
          labels: config.labels,
          ...(config.cluster ? { cluster: config.cluster } : {}),
          engine: caps,
          jetson,
          policy: {
            ...(config.policy ?? DEFAULT_POLICY),
            ...(engineSocket ? { engineSocket } : {}),
            ...(config.checkpointRoot ? { checkpointRoot: config.checkpointRoot } : {}),
            allowExec: config.allowExec === true,
          },
        },
        collectors,
        log,
      ),
    onRegistered: (reg) => {
      if (channel && channelConfig && !sameChannel(channelConfig, reg.channel)) {
        log.info('command channel changed', { channel: reg.channel.type });
        channel.close();
        channel = createChannel(reg.channel, client, deps.sqsClient);
        channelConfig = reg.channel;
      }
    },
  });
  client.setReRegister(() => registrar.reRegister());
  let registration;
  try {
    registration = await registrar.start(signal);
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
  channelConfig = registration.channel;
  channel = createChannel(channelConfig, client, deps.sqsClient);

  const events = new EventReporter({
    post: (batch, s) => client.postEvents(batch, { signal: s, attempts: 3 }),
    logger: log,
  });
  const mutex = new KeyedMutex();
  const checkpoints = new CheckpointSync({
    api: client,
    logger: log,
    ...(config.checkpointRoot ? { root: config.checkpointRoot } : {}),
  });
  const watcher = new ExitWatcher({
    engine,
    journal,
    events,
    logger: log,
    beforeRunExit: async (c) => void (await checkpoints.finish(c.instanceId, c.labels)),
    ...(deps.watchPollMs ? { pollMs: deps.watchPollMs } : {}),
  });
  const tasks = new TaskRunner({
    engine,
    events,
    journal,
    logger: log,
    withLock: (key, fn) => mutex.run(key, fn),
  });
  const follower = new OutputFollower({ engine, events, logger: log });
  const executor = new CommandExecutor({
    nodeId: () => registrar.registration.nodeId,
    engine,
    journal,
    tasks,
    reporter: { reportResult: (id, result) => client.reportResult(id, result) },
    logger: log,
    hooks: { expectExit: (id) => watcher.expectExit(id) },
    follower,
    mutex,
    ...(config.buildRoot ? { buildRoot: config.buildRoot } : {}),
    allowExec: config.allowExec === true,
    stateDir: config.stateDir,
    hostInstall: {
      fetchCredential: (commandId) => client.installCredential(commandId, { signal }),
      reportSteps: (commandId, steps) => client.installSteps(commandId, steps, { signal }),
      controlPlaneUrl: config.url,
      ...(config.installBundle ? { bundlePath: config.installBundle } : {}),
    },
    policy: config.policy ?? DEFAULT_POLICY,
    ...(engineSocket ? { engineSocket } : {}),
    checkpoints,
  });
  const heartbeat = new Heartbeat({
    send: (request, s) => client.heartbeat(request, { signal: s }),
    engine,
    metrics: () => collectNodeMetrics(collectors, { jetson: jetson !== null }, log),
    logger: log,
    intervalMs: () => (config.heartbeatSeconds ?? registrar.registration.heartbeatIntervalSeconds) * 1000,
  });

  const resumed = checkpoints.resume(await engine.list().catch(() => []));
  if (resumed > 0) log.info('checkpoint sync resumed for running training runs', { count: resumed });
  const orphans = await tasks.reportOrphans();
  if (orphans > 0) log.warn('reported tasks lost to the last restart as failed', { count: orphans });

  log.info('agent running', {
    nodeId: registration.nodeId,
    channel: registration.channel.type,
    engine: caps.name,
    engineVersion: caps.version,
    allowExec: config.allowExec === true,
  });
  if (config.allowExec) {
    log.warn(
      'remote command execution is enabled (--allow-exec): the control plane may run shell commands on this host',
    );
  }
  deps.onReady?.({ nodeId: registration.nodeId, engine: caps });
  const idle = new IdleCollector(() => executor.pending > 0);
  // Start-up's garbage (module set-up, registration) goes before the agent idles.
  idle.kick(0);
  idle.watchScavenges();
  await Promise.all([
    events.run(signal),
    heartbeat.run(signal),
    watcher.run(signal),
    runCommandLoop(
      {
        channel: () => channel!,
        dispatch: (d) => executor.dispatch(d).finally(() => idle.kick()),
        pending: () => executor.pending,
        logger: log,
      },
      signal,
    ),
  ]);

  log.info('agent stopping; containers keep running');
  idle.stop();
  // Said first (the heartbeats have ended), so nothing new is placed here while what runs finishes.
  // Best effort: a control plane out of reach sees the node offline after its heartbeats stop.
  // Not for an announced restart (an upgrade): the agent is back before the node would go offline.
  const told = (await takeRestartMarker(config.stateDir))
    ? Promise.resolve(log.info('restart announced: the node stays online'))
    : client.stopping({ signal: AbortSignal.timeout(5_000) }).then(
        () => log.info('control plane told: the node is offline until the agent starts again'),
        (error: unknown) => log.warn('could not tell the control plane the node is stopping', { error }),
      );
  checkpoints.close();
  await tasks.shutdown(5_000);
  await executor.drain(10_000);
  follower.stopAll();
  await events.flush(5_000);
  (channel as CommandChannel | null)?.close();
  await journal.flush().catch(() => undefined);
  await told;
  log.info('agent stopped');
}
