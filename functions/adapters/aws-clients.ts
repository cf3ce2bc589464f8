import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import type { Config } from '../core/config.js';

/** The settings a client depends on; everything else in Config is irrelevant to it. */
export type AwsClientConfig = Pick<Config, 'AWS_REGION'> & Partial<Pick<Config, 'AWS_ENDPOINT_URL'>>;

interface Destroyable {
  destroy(): void;
}

// One client per service, endpoint and region: clients hold sockets, so Lambda reuses them across
// invocations. Built on first use, never at import time, so tests can point them anywhere.
const cache = new Map<string, Destroyable>();

function cached<T extends Destroyable>(service: string, config: AwsClientConfig, build: () => T): T {
  const key = `${service}|${config.AWS_REGION}|${config.AWS_ENDPOINT_URL ?? ''}`;
  let client = cache.get(key) as T | undefined;
  if (!client) {
    client = build();
    cache.set(key, client);
  }
  return client;
}

/** Options every client shares: the region, and the endpoint only when one is configured (moto, LocalStack). */
export function baseClientOptions(config: AwsClientConfig): { region: string; endpoint?: string } {
  return config.AWS_ENDPOINT_URL
    ? { region: config.AWS_REGION, endpoint: config.AWS_ENDPOINT_URL }
    : { region: config.AWS_REGION };
}

export function sqsClient(config: AwsClientConfig): SQSClient {
  return cached('sqs', config, () => new SQSClient(baseClientOptions(config)));
}

// S3, SSM and Scheduler load on first use: each SDK costs 60-100 ms of cold start, and most
// requests touch only DynamoDB and SQS.
export async function schedulerClient(config: AwsClientConfig): Promise<SchedulerClient> {
  const { SchedulerClient } = await import('@aws-sdk/client-scheduler');
  return cached('scheduler', config, () => new SchedulerClient(baseClientOptions(config)));
}

export async function ssmClient(config: AwsClientConfig): Promise<SSMClient> {
  const { SSMClient } = await import('@aws-sdk/client-ssm');
  return cached('ssm', config, () => new SSMClient(baseClientOptions(config)));
}

// STS (the agent route that vends node credentials) is the SDK's own nested STS client: the same
// AssumeRole the SDK's credential providers use, without another package.
export async function stsClient(config: AwsClientConfig): Promise<STSClient> {
  const { STSClient } = await import('@aws-sdk/client-sts');
  // Nested clients resolve no credentials of their own: the default chain, as the SQS client has it.
  return cached(
    'sts',
    config,
    () => new STSClient({ ...baseClientOptions(config), credentials: sqsClient(config).config.credentials }),
  );
}

export function dynamoDbClient(config: AwsClientConfig): DynamoDBClient {
  return cached('dynamodb', config, () => new DynamoDBClient(baseClientOptions(config)));
}

export async function s3Client(config: AwsClientConfig): Promise<S3Client> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  return cached(
    's3',
    config,
    () =>
      new S3Client({
        ...baseClientOptions(config),
        // Emulators serve every bucket on one host: virtual-hosted names (bucket.127.0.0.1) would not resolve.
        forcePathStyle: Boolean(config.AWS_ENDPOINT_URL),
      }),
  );
}

/** Destroys and forgets every cached client (tests that switch endpoints, or clean shutdown). */
export function resetAwsClients(): void {
  for (const client of cache.values()) client.destroy();
  cache.clear();
}
