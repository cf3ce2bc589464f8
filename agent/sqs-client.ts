import { createHash, createHmac, type BinaryLike } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { retry } from './backoff.js';
import { call } from './http.js';

/**
 * The three SQS calls the agent makes (receive, delete, renew a lease), in SQS's JSON protocol,
 * signed with SigV4 over the agent's own HTTP client. The AWS SDK's SQS client does the same with
 * its middleware stack, endpoint rules and retry strategy: about 10 MB more resident in an idle agent.
 * As the SDK does, a call is tried up to 3 times when the connection fails (a keep-alive socket the
 * endpoint closed) or SQS answers 5xx or throttles; then it rejects (the command loop backs off).
 */

export interface SqsMessage {
  MessageId?: string;
  ReceiptHandle?: string;
  Body?: string;
}

export interface SqsCalls {
  ReceiveMessage: {
    input: {
      QueueUrl: string;
      WaitTimeSeconds?: number;
      MaxNumberOfMessages?: number;
      VisibilityTimeout?: number;
    };
    output: { Messages?: SqsMessage[] };
  };
  DeleteMessage: { input: { QueueUrl: string; ReceiptHandle: string }; output: object };
  ChangeMessageVisibility: {
    input: { QueueUrl: string; ReceiptHandle: string; VisibilityTimeout: number };
    output: object;
  };
}

/** What the channel needs of SQS (tests hand in their own). */
export interface SqsApi {
  send<A extends keyof SqsCalls>(
    action: A,
    input: SqsCalls[A]['input'],
    signal: AbortSignal,
  ): Promise<SqsCalls[A]['output']>;
}

/** An error SQS answered with: `name` is its code (QueueDoesNotExist, ExpiredToken, ...). */
export class SqsError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, message: string, status: number) {
    super(message || `SQS answered ${status} ${code}`);
    this.name = code;
    this.$metadata = { httpStatusCode: status };
  }
}

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data): BinaryLike =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? new Uint8Array(d)
      : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** SHA-256 and HMAC-SHA-256 from node:crypto in the shape the SigV4 signer takes. */
class Sha256 {
  private readonly hash;
  constructor(secret?: Data) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Data): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {}
}

/**
 * The error code of a JSON-protocol answer: `x-amzn-query-error` carries the query protocol's code
 * (AWS.SimpleQueueService.NonExistentQueue), `__type` the JSON one (com.amazonaws.sqs#QueueDoesNotExist).
 */
function errorOf(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  text: string,
): SqsError {
  let body: { __type?: string; code?: string; message?: string; Message?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const type = body.__type ?? body.code ?? String(headers['x-amzn-errortype'] ?? '');
  const code = type.split('#').pop()!.split(':')[0]! || `Http${status}`;
  return new SqsError(code, body.message ?? body.Message ?? '', status);
}

const THROTTLED = new Set(['RequestThrottled', 'ThrottlingException', 'Throttling']);

export interface SqsClientOptions {
  region: string;
  /** The emulator's URL; otherwise the queue URL's own origin (as the SDK addresses SQS). */
  endpoint?: string;
  credentials: AwsCredentialIdentityProvider;
}

export class SqsClient implements SqsApi {
  private readonly signer: SignatureV4;
  constructor(private readonly options: SqsClientOptions) {
    this.signer = new SignatureV4({
      service: 'sqs',
      region: options.region,
      sha256: Sha256,
      credentials: options.credentials,
    });
  }

  send<A extends keyof SqsCalls>(
    action: A,
    input: SqsCalls[A]['input'],
    signal: AbortSignal,
  ): Promise<SqsCalls[A]['output']> {
    return retry(() => this.once(action, input, signal), {
      signal,
      maxAttempts: 3,
      baseMs: 100,
      maxMs: 1_000,
      shouldRetry: (error) =>
        !(error instanceof SqsError) || error.$metadata.httpStatusCode >= 500 || THROTTLED.has(error.name),
    });
  }

  private async once<A extends keyof SqsCalls>(
    action: A,
    input: SqsCalls[A]['input'],
    signal: AbortSignal,
  ): Promise<SqsCalls[A]['output']> {
    const target = new URL(this.options.endpoint ?? new URL(input.QueueUrl).origin);
    const body = JSON.stringify(input);
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: target.protocol,
      hostname: target.hostname,
      ...(target.port ? { port: Number(target.port) } : {}),
      path: target.pathname,
      query: {},
      headers: {
        host: target.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `AmazonSQS.${action}`,
        'x-amzn-query-mode': 'true',
      },
      body,
    });
    const answer = await call(target.href, {
      method: 'POST',
      headers: signed.headers,
      body,
      signal,
    });
    if (answer.statusCode < 200 || answer.statusCode >= 300)
      throw errorOf(answer.statusCode, answer.headers, answer.text);
    return (answer.text ? JSON.parse(answer.text) : {}) as SqsCalls[A]['output'];
  }
}
