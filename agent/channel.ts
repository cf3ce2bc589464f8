import type { CommandChannel as ChannelConfig } from '../protocol/messages.js';
import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import type { ControlPlaneClient } from './client.js';
import { vendedCredentials } from './credentials.js';
import type { SqsChannelOptions } from './sqs-channel.js';
import type { SqsApi } from './sqs-client.js';
import { inNewOperation, type Logger } from './log.js';

/** One received command; `ack` removes it from the channel (after its result was reported). */
export interface Delivery {
  receiptHandle: string;
  /** A CommandEnvelope as JSON text. */
  body: string;
  ack(): Promise<void>;
  /** Told once the executor is done with it, acknowledged or left to come back (a leased delivery stops renewing). */
  settled?(): void;
}

/** Where commands come from: the control plane's long-poll route or the node's SQS queue. */
export interface CommandChannel {
  readonly type: ChannelConfig['type'];
  /** Long-polls; resolves with zero or more deliveries, or rejects (the caller backs off). */
  receive(signal: AbortSignal): Promise<Delivery[]>;
  close(): void;
}

export interface HttpChannelOptions {
  waitSeconds?: number;
  max?: number;
}

export class HttpCommandChannel implements CommandChannel {
  readonly type = 'http' as const;
  constructor(
    private readonly client: ControlPlaneClient,
    private readonly options: HttpChannelOptions = {},
  ) {}

  async receive(signal: AbortSignal): Promise<Delivery[]> {
    const messages = await this.client.pollCommands(this.options.waitSeconds ?? 20, this.options.max ?? 10, {
      signal,
    });
    return messages.map((m) => ({
      receiptHandle: m.receiptHandle,
      body: m.body,
      // The executor retries too; keep the product of both small.
      ack: () => this.client.ack([m.receiptHandle], { attempts: 2 }),
    }));
  }

  close(): void {}
}

/**
 * The SQS channel, loaded on first use: an agent on the HTTP channel (the embedded runtime) never
 * needs its signer.
 */
class DeferredSqsChannel implements CommandChannel {
  readonly type = 'sqs' as const;
  private inner?: Promise<CommandChannel>;
  constructor(private readonly options: SqsChannelOptions) {}

  private load(): Promise<CommandChannel> {
    this.inner ??= import('./sqs-channel.js').then((m) => new m.SqsCommandChannel(this.options));
    return this.inner;
  }

  async receive(signal: AbortSignal): Promise<Delivery[]> {
    return (await this.load()).receive(signal);
  }

  close(): void {
    void this.inner?.then((c) => c.close());
  }
}

export function createChannel(
  config: ChannelConfig,
  client: ControlPlaneClient,
  sqsClient?: SqsApi,
): CommandChannel {
  if (config.type === 'http') return new HttpCommandChannel(client);
  return new DeferredSqsChannel({
    queueUrl: config.queueUrl,
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    credentials: vendedCredentials(() => client.queueCredentials()),
    ...(sqsClient ? { client: sqsClient } : {}),
  });
}

/** Same channel? Re-registration may move the node to another queue. */
export function sameChannel(a: ChannelConfig, b: ChannelConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface CommandLoopOptions {
  /** Read every round: a re-registration may have moved the node to another channel. */
  channel: () => CommandChannel;
  dispatch: (delivery: Delivery) => Promise<void>;
  /** Deliveries being handled; no new poll while this many run (backpressure). */
  pending: () => number;
  maxPending?: number;
  logger: Logger;
  backoff?: BackoffOptions;
}

/** Long-polls the channel and hands each delivery to the executor, backing off while the channel fails. */
export async function runCommandLoop(options: CommandLoopOptions, signal: AbortSignal): Promise<void> {
  const log = options.logger.child({ component: 'commands' });
  const backoff = new Backoff(options.backoff ?? { baseMs: 1_000, maxMs: 60_000 });
  const maxPending = options.maxPending ?? 8;
  let failures = 0;
  while (!signal.aborted) {
    if (options.pending() >= maxPending) {
      await sleep(200, signal);
      continue;
    }
    const channel = options.channel();
    try {
      const deliveries = await inNewOperation(() => channel.receive(signal));
      if (failures > 0)
        log.info('command channel reachable again', { channel: channel.type, after: failures });
      failures = 0;
      backoff.reset();
      // In order: per-instance locks keep start-before-stop when both arrive in one batch.
      for (const d of deliveries) void inNewOperation(() => options.dispatch(d).finally(() => d.settled?.()));
    } catch (error) {
      if (signal.aborted) break;
      failures++;
      const delayMs = backoff.next();
      if (failures === 1 || failures % 10 === 0)
        log.warn('receiving commands failed; backing off', {
          channel: channel.type,
          failures,
          delayMs,
          error,
        });
      await sleep(delayMs, signal);
    }
  }
}
