import { dynamoDbClient } from '../adapters/aws-clients.js';
import { DynamoStore, ensureTable } from '../adapters/dynamo-store.js';
import { ApiGatewayConnections } from '../adapters/apigw-connections.js';
import { BedrockChatModel } from '../adapters/bedrock-chat-model.js';
import { EventBridgeScheduler } from '../adapters/eventbridge-scheduler.js';
import { S3Blobs } from '../adapters/s3-blobs.js';
import { SqsQueue } from '../adapters/sqs-queue.js';
import { SsmSecrets } from '../adapters/ssm-secrets.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { EVENTS_QUEUE } from './events.js';
import { createLogger } from './logger.js';

/** The AWS adapters: real AWS in Lambda, or the emulator at AWS_ENDPOINT_URL (moto, LocalStack). */
export function createAwsContext(config: Config, options: { mode: AppContext['mode']; now?: () => number }): AppContext {
  const now = options.now ?? Date.now;
  return {
    config,
    store: new DynamoStore(dynamoDbClient(config), config.TABLE_NAME),
    queue: new SqsQueue(config),
    scheduler: new EventBridgeScheduler(config),
    secrets: new SsmSecrets(config),
    blobs: new S3Blobs(config),
    logger: createLogger(config),
    now,
    startedAt: now(),
    mode: options.mode,
    chatModel: new BedrockChatModel(config),
    // Only the functions that push get the stage's callback URL (and the grant to post to it).
    ...(config.WS_CALLBACK_URL ? { connections: new ApiGatewayConnections(config.WS_CALLBACK_URL, config.AWS_REGION) } : {}),
  };
}

/**
 * Creates what the CDK stack would have created (table, events queue, bucket), for a local
 * runtime pointed at an emulator. Idempotent.
 */
export async function ensureAwsResources(ctx: AppContext): Promise<void> {
  await ensureTable(dynamoDbClient(ctx.config), ctx.config.TABLE_NAME);
  await ctx.queue.ensure({ name: EVENTS_QUEUE, visibilityTimeoutSeconds: 60, maxReceiveCount: 5 });
  if (ctx.blobs instanceof S3Blobs) await ctx.blobs.ensure();
}
