import type { CommandChannel, Delivery } from './channel.js';
import type { VendedCredentialsProvider } from './credentials.js';
import { SqsClient, type SqsApi } from './sqs-client.js';

/** The node's own SQS queue as the command channel (channel.ts loads this module on first use). */

export interface SqsChannelOptions {
  queueUrl: string;
  region: string;
  endpoint?: string;
  /** Vended by the control plane (POST /agent/credentials); the node's environment is never asked. */
  credentials: VendedCredentialsProvider;
  /** Injected in tests; otherwise signed with `credentials`. */
  client?: SqsApi;
  waitSeconds?: number;
  max?: number;
  /**
   * The lease a received message gets, renewed while its command runs. Short, so what an agent
   * killed mid-poll or mid-command received comes back soon (a poll open when it died still takes
   * messages), instead of after the queue's visibility timeout.
   */
  visibilityTimeoutSeconds?: number;
}

const LEASE_SECONDS = 30;

/** SQS refused the credentials themselves (expired, revoked, or narrowed to another queue). */
const CREDENTIAL_ERRORS = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'AccessDenied',
  'AccessDeniedException',
]);
const isCredentialError = (error: unknown) =>
  error instanceof Error &&
  (CREDENTIAL_ERRORS.has(error.name) ||
    (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403);

export class SqsCommandChannel implements CommandChannel {
  readonly type = 'sqs' as const;
  private readonly sqs: SqsApi;

  constructor(private readonly options: SqsChannelOptions) {
    this.sqs =
      options.client ??
      new SqsClient({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        credentials: options.credentials,
      });
  }

  async receive(signal: AbortSignal): Promise<Delivery[]> {
    let out;
    try {
      const waitSeconds = this.options.waitSeconds ?? 20;
      out = await this.sqs.send(
        'ReceiveMessage',
        {
          QueueUrl: this.options.queueUrl,
          WaitTimeSeconds: waitSeconds,
          MaxNumberOfMessages: this.options.max ?? 10,
          VisibilityTimeout: this.lease,
        },
        // A poll that never answers (a half-open connection) ends well after SQS's own wait.
        AbortSignal.any([signal, AbortSignal.timeout((waitSeconds + 20) * 1000)]),
      );
    } catch (error) {
      // The provider keeps credentials until they near expiry: refused ones are asked for again.
      if (isCredentialError(error)) this.options.credentials.invalidate();
      throw error;
    }
    return (out.Messages ?? [])
      .filter((m) => m.ReceiptHandle !== undefined)
      .map((m) => {
        const stop = this.keepLeased(m.ReceiptHandle!);
        return {
          receiptHandle: m.ReceiptHandle!,
          body: m.Body ?? '',
          ack: async () => {
            stop();
            await this.sqs.send(
              'DeleteMessage',
              { QueueUrl: this.options.queueUrl, ReceiptHandle: m.ReceiptHandle! },
              AbortSignal.timeout(15_000),
            );
          },
          settled: stop,
        };
      });
  }

  private get lease(): number {
    return this.options.visibilityTimeoutSeconds ?? LEASE_SECONDS;
  }

  /** Renews the message's lease at a third of it until the returned function is called. */
  private keepLeased(receiptHandle: string): () => void {
    const timer = setInterval(
      () => {
        this.sqs
          .send(
            'ChangeMessageVisibility',
            { QueueUrl: this.options.queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: this.lease },
            AbortSignal.timeout(10_000),
          )
          // A missed renewal at worst lets the command come back, which the journal makes harmless.
          .catch(() => undefined);
      },
      (this.lease * 1000) / 3,
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  close(): void {}
}
