import { dynamoDbClient } from '../adapters/aws-clients.js';
import { DynamoStore, ensureTable } from '../adapters/dynamo-store.js';
import { ApiGatewayConnections } from '../adapters/apigw-connections.js';
import { BedrockChatModel } from '../adapters/bedrock-chat-model.js';
import { createNovitaCloud } from '../adapters/http-novita-cloud.js';
import { EventBridgeScheduler } from '../adapters/eventbridge-scheduler.js';
import { S3Blobs } from '../adapters/s3-blobs.js';
import { S3InstallFiles } from '../adapters/s3-presign.js';
import { INSTALL_ASSETS_PREFIX } from '../system/install.js';
import { SqsQueue } from '../adapters/sqs-queue.js';
import { SsmSecrets } from '../adapters/ssm-secrets.js';
import { StsNodeCredentials } from '../adapters/sts-node-credentials.js';
import { agentQueuePolicy, nodeQueuesArnPattern } from '../nodes/queue-policy.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { EVENTS_QUEUE } from './events.js';
import { createLogger } from './logger.js';

/** The AWS adapters: real AWS in Lambda, or the emulator at AWS_ENDPOINT_URL (moto, LocalStack). */
export function createAwsContext(
  config: Config,
  options: { mode: AppContext['mode']; now?: () => number },
): AppContext {
  const now = options.now ?? Date.now;
  const secrets = new SsmSecrets(config);
  const originParameter = config.ORIGIN_SECRET_PARAMETER;
  return {
    config,
    store: new DynamoStore(dynamoDbClient(config), config.TABLE_NAME),
    queue: new SqsQueue(config),
    scheduler: new EventBridgeScheduler(config),
    secrets,
    blobs: new S3Blobs(config),
    logger: createLogger(config),
    now,
    startedAt: now(),
    mode: options.mode,
    chatModel: new BedrockChatModel(config),
    novita: createNovitaCloud(config, secrets, now),
    ...(config.AGENT_ROLE_ARN
      ? { nodeCredentials: new StsNodeCredentials({ ...config, AGENT_ROLE_ARN: config.AGENT_ROLE_ARN }) }
      : {}),
    ...(config.INSTALL_ASSETS_BUCKET
      ? { installFiles: new S3InstallFiles(config, config.INSTALL_ASSETS_BUCKET, INSTALL_ASSETS_PREFIX) }
      : {}),
    ...(originParameter ? { originSecret: () => secrets.getAbsolute(originParameter) } : {}),
    // Only the functions that push get the stage's callback URL (and the grant to post to it).
    ...(config.WS_CALLBACK_URL
      ? { connections: new ApiGatewayConnections(config.WS_CALLBACK_URL, config.AWS_REGION) }
      : {}),
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
  if (!ctx.config.AGENT_ROLE_ARN) await ensureAgentRole(ctx);
}

/**
 * The agent role lib/agent-identity.ts defines, on the emulator: assumable by this account (the
 * runtime's own credentials stand in for the agent function's role), allowed the agent's actions
 * on the deployment's node queues. Nodes then get credentials from POST /agent/credentials.
 */
async function ensureAgentRole(ctx: AppContext): Promise<void> {
  const { ensureRole } = await import('../adapters/emulator-iam.js');
  const { config } = ctx;
  // The account the emulator serves, as its queue URLs name it.
  const account = new URL(await ctx.queue.url!(EVENTS_QUEUE)).pathname.split('/')[1]!;
  const roleArn = await ensureRole(config, {
    name: `${config.QUEUE_PREFIX}agent`.slice(0, 64),
    trustPolicy: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'sts:AssumeRole' },
      ],
    },
    policies: {
      'node-queues': agentQueuePolicy(
        nodeQueuesArnPattern('aws', config.AWS_REGION, account, config.QUEUE_PREFIX),
      ),
    },
  });
  ctx.nodeCredentials = new StsNodeCredentials({ ...config, AGENT_ROLE_ARN: roleArn });
}
