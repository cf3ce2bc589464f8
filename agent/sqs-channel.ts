import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { CommandChannel, Delivery } from './channel.js';
import type { VendedCredentialsProvider } from './credentials.js';

/** The node's own SQS queue as the command channel (channel.ts loads this module on first use). */

export interface SqsChannelOptions {
  queueUrl: string;
  region: string;
  endpoint?: string;
  /** Vended by the control plane (POST /agent/credentials); the node's environment is never asked. */
  credentials: VendedCredentialsProvider;
  /** Injected in tests; otherwise built with `credentials`. */
  client?: SQSClient;
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
  private sqs: SQSClient;

  constructor(private readonly options: SqsChannelOptions) {
    this.sqs = options.client ?? this.newClient();
  }

  private newClient(): SQSClient {
    return new SQSClient({
      region: this.options.region,
      ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
      credentials: this.options.credentials,
    });
  }

  async receive(signal: AbortSignal): Promise<Delivery[]> {
    let out;
    try {
      out = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.options.queueUrl,
          WaitTimeSeconds: this.options.waitSeconds ?? 20,
          MaxNumberOfMessages: this.options.max ?? 10,
          VisibilityTimeout: this.lease,
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      // The SDK keeps an identity until it nears expiry: a new client asks the provider again.
      if (isCredentialError(error) && !this.options.client) {
        this.options.credentials.invalidate();
        this.sqs.destroy();
        this.sqs = this.newClient();
      }
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
              new DeleteMessageCommand({ QueueUrl: this.options.queueUrl, ReceiptHandle: m.ReceiptHandle! }),
              { abortSignal: AbortSignal.timeout(15_000) },
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
            new ChangeMessageVisibilityCommand({
              QueueUrl: this.options.queueUrl,
              ReceiptHandle: receiptHandle,
              VisibilityTimeout: this.lease,
            }),
            { abortSignal: AbortSignal.timeout(10_000) },
          )
          // A missed renewal at worst lets the command come back, which the journal makes harmless.
          .catch(() => undefined);
      },
      (this.lease * 1000) / 3,
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  close(): void {
    this.sqs.destroy();
  }
}
