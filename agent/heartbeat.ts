import type { ContainerState, HeartbeatRequest, NodeMetrics } from '../protocol/messages.js';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import type { ContainerStats, EngineDriver, ManagedContainer } from './engine/types.js';
import { LABELS } from '../protocol/messages.js';
import { inNewOperation, type Logger } from './log.js';

export interface HeartbeatOptions {
  send: (request: HeartbeatRequest, signal: AbortSignal) => Promise<void>;
  engine: EngineDriver;
  metrics: () => Promise<NodeMetrics>;
  logger: Logger;
  /** Read each round: a re-registration may change it. */
  intervalMs: () => number;
  /** Retry pacing while the control plane is unreachable. */
  backoff?: BackoffOptions;
}

export function toContainerState(c: ManagedContainer, stats: ContainerStats | null): ContainerState {
  return {
    containerId: c.id,
    name: c.name,
    instanceId: c.instanceId,
    imageId: c.imageId,
    kind: c.kind,
    state: c.state,
    exitCode: c.exitCode,
    startedAt: c.startedAt,
    ports: c.ports.map((p) => ({
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      protocol: p.protocol,
    })),
    stats,
    labels: c.labels,
  };
}

/**
 * Sends node metrics and the state of every managed container on an interval. It only reports:
 * a control-plane outage changes nothing on the node (running containers stay as they are); the
 * loop backs off and reconnects on its own.
 */
export class Heartbeat {
  private readonly log: Logger;
  private lastContainers: ContainerState[] = [];
  private failures = 0;

  constructor(private readonly options: HeartbeatOptions) {
    this.log = options.logger.child({ component: 'heartbeat' });
  }

  async build(): Promise<HeartbeatRequest> {
    const [metrics, containers] = await Promise.all([this.options.metrics(), this.containers()]);
    const loadedModels = [
      ...new Set(
        containers
          .filter((c) => c.kind === 'model' && c.state === 'running' && c.labels[LABELS.model])
          .map((c) => c.labels[LABELS.model]!),
      ),
    ];
    return { metrics, containers, loadedModels };
  }

  private async containers(): Promise<ContainerState[]> {
    let list: ManagedContainer[];
    try {
      list = await this.options.engine.list();
    } catch (error) {
      // An empty list would read as "all containers gone"; the last known one is the lesser lie.
      this.log.warn('engine unreachable; sending the last known containers', { error });
      return this.lastContainers;
    }
    const states = await Promise.all(
      list.map(async (c) =>
        toContainerState(c, c.running ? await this.options.engine.stats(c.id).catch(() => null) : null),
      ),
    );
    this.lastContainers = states;
    return states;
  }

  /** One heartbeat; throws when it was not delivered. */
  async beat(signal: AbortSignal): Promise<void> {
    await this.options.send(await this.build(), signal);
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.options.backoff ?? { baseMs: 1_000, maxMs: 60_000 });
    while (!signal.aborted) {
      // One operation per beat: its lines and its request share one id.
      const wait = await inNewOperation(async (): Promise<number | undefined> => {
        try {
          await this.beat(signal);
          if (this.failures > 0) this.log.info('heartbeat delivered again', { after: this.failures });
          this.failures = 0;
          backoff.reset();
          return this.options.intervalMs();
        } catch (error) {
          if (signal.aborted) return undefined;
          this.failures++;
          const retryInMs = backoff.next();
          // Loud on the first failure, then every tenth, so an outage does not flood the log.
          if (this.failures === 1 || this.failures % 10 === 0) {
            this.log.warn('heartbeat failed; backing off', { failures: this.failures, retryInMs, error });
          }
          return retryInMs;
        }
      });
      if (wait === undefined) break;
      await sleep(wait, signal);
    }
  }
}
