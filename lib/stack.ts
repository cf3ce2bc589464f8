import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Effect, PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
// cdk-nag's own rendering of a policy resource, so acknowledgements match its finding ids.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { Construct } from 'constructs';
import type { Config } from '../functions/core/config.js';
import type { RouteGroup, TableRoute } from '../functions/core/route.js';
import { AgentIdentity } from './agent-identity.js';
import { Api } from './api.js';
import { DOCS_ASSETS_SUBDIR, LAMBDA_TASK_ROOT, docsAssetsHooks, writeOpenApiFile } from './bundling.js';
import { Data } from './data.js';
import { ControlPlaneFunction } from './function.js';
import { EVENTS_ENTRY, WEBSOCKET_ENTRY, byGroup, groupEntry, pascal } from './groups.js';
import { Messaging } from './messaging.js';
import { readSettings, type Settings } from './settings.js';
import { WebSocket } from './websocket.js';

export interface ControlPlaneStackProps extends StackProps {
  /** The route table (functions/routes.ts): one API Gateway route per entry. */
  routes: readonly TableRoute[];
}

/** A batch of events may reconcile several nodes; well under the queue's visibility timeout. */
const EVENTS_TIMEOUT = Duration.seconds(60);

/**
 * The serverless control plane: one function per route group behind an HTTP API, the events
 * worker on its queue, and the table, bucket, schedule group and parameters they share.
 */
export class ControlPlaneStack extends Stack {
  readonly functions: Record<RouteGroup | 'events' | 'websocket', ControlPlaneFunction>;
  readonly webSocket: WebSocket;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props);
    const settings = readSettings(this);

    const data = new Data(this, 'Data', { ssmPrefix: settings.ssmPrefix });
    const messaging = new Messaging(this, 'Messaging', {
      queuePrefix: settings.queuePrefix,
      scheduleGroup: settings.scheduleGroup,
      consumerTimeout: EVENTS_TIMEOUT,
    });

    // What loadConfig reads; typed against Config so a renamed setting fails to compile.
    const environment = {
      TABLE_NAME: data.table.tableName,
      QUEUE_PREFIX: settings.queuePrefix,
      SCHEDULE_GROUP: settings.scheduleGroup,
      SCHEDULE_TARGET_ARN: messaging.events.queueArn,
      SCHEDULE_ROLE_ARN: messaging.schedulerRole.roleArn,
      ARTIFACTS_BUCKET: data.artifacts.bucketName,
      SECRETS_PREFIX: settings.ssmPrefix,
      CORS_ORIGINS: settings.corsOrigins.join(','),
      API_AUTH: String(settings.apiAuth),
    } satisfies Partial<Record<keyof Config, string>>;
    const shared = { logLevel: settings.logLevel, logRetention: settings.logRetention };

    const openapiFile = writeOpenApiFile(props.routes);
    const http = byGroup((group) => {
      const isSystem = group === 'system';
      return new ControlPlaneFunction(this, `${pascal(group)}Function`, {
        ...shared,
        entry: groupEntry(group),
        description: `Control plane HTTP routes: ${group}`,
        memorySize: settings.lambdaMemory[group],
        environment: isSystem
          ? { ...environment, DOCS_ASSETS_DIR: `${LAMBDA_TASK_ROOT}/${DOCS_ASSETS_SUBDIR}` }
          : environment,
        ...(isSystem ? { commandHooks: docsAssetsHooks(openapiFile) } : {}),
      });
    });

    const events = new ControlPlaneFunction(this, 'EventsFunction', {
      ...shared,
      entry: EVENTS_ENTRY,
      description: 'Control plane events worker (schedule firings, reconcile requests, agent results)',
      memorySize: settings.lambdaMemory.events,
      environment,
      timeout: EVENTS_TIMEOUT,
    });
    events.fn.addEventSource(
      new SqsEventSource(messaging.events, { batchSize: 10, reportBatchItemFailures: true }),
    );
    const websocket = new ControlPlaneFunction(this, 'WebSocketFunction', {
      ...shared,
      entry: WEBSOCKET_ENTRY,
      description: 'Control plane WebSocket API: $connect (API key, channel) and $disconnect',
      memorySize: settings.lambdaMemory.websocket,
      environment,
    });
    this.functions = { ...http, events, websocket };

    // Nodes authenticate to the control plane only; the agent function vends their queue credentials.
    const agentIdentity = new AgentIdentity(this, 'AgentIdentity', { queuePrefix: settings.queuePrefix, vendedBy: http.agent.role });
    http.agent.fn.addEnvironment('AGENT_ROLE_ARN', agentIdentity.role.roleArn);

    // Every function gets the same grants: the system function is the `$default` target and may
    // run any route's handler, and every handler receives the full AppContext.
    for (const f of Object.values(this.functions)) grantControlPlane(f.role, data, messaging, settings);

    const api = new Api(this, 'Api', {
      routes: props.routes,
      functions: byGroup((group) => http[group].fn),
      corsOrigins: settings.corsOrigins,
      logRetention: settings.logRetention,
    });

    // Only the events worker pushes (log lines, the live-push schedule, first frames after $connect).
    this.webSocket = new WebSocket(this, 'WebSocket', { handler: websocket.fn, logRetention: settings.logRetention });
    events.fn.addEnvironment('WS_CALLBACK_URL', this.webSocket.callbackUrl);
    grantManageConnections(events.role, this.webSocket);

    new CfnOutput(this, 'ApiUrl', { value: api.stage.url });
    new CfnOutput(this, 'WebSocketUrl', {
      value: this.webSocket.stage.url,
      description: 'wss URL of the WebSocket API: ?channel=metrics, ?channel=logs&node_id=<id or name>, ?channel=doctor (&token=<api key> when API_AUTH is on)',
    });
    new CfnOutput(this, 'ApiKeyParameter', {
      value: data.apiKeyParameterName,
      description:
        'Create it once per account and region (CloudFormation cannot create SecureStrings): ' +
        `aws ssm put-parameter --type SecureString --name ${data.apiKeyParameterName} --value <key>`,
    });
    new CfnOutput(this, 'ArtifactsBucket', { value: data.artifacts.bucketName });
    new CfnOutput(this, 'TableName', { value: data.table.tableName });
  }
}

/**
 * Least privilege, resource by resource: the calls the adapters in functions/adapters make. Each
 * wildcard is acknowledged for cdk-nag (AwsSolutions-IAM5) on this role only, with its reason.
 */
function grantControlPlane(role: Role, data: Data, messaging: Messaging, settings: Settings): void {
  const stack = Stack.of(role);
  const { region, account, partition } = stack;
  const allow = (actions: string[], resources: string[], wildcardReason?: string) => {
    role.addToPrincipalPolicy(new PolicyStatement({ effect: Effect.ALLOW, actions, resources }));
    for (const resource of resources) {
      const rendered = flattenCfnReference(stack.resolve(resource));
      if (wildcardReason && rendered.includes('*')) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${rendered}]`,
          reason: wildcardReason,
        });
      }
    }
  };

  // DynamoStore: item reads and writes, queries on the GSIs, DescribeTable for /health.
  allow(
    ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
    [data.table.tableArn, `${data.table.tableArn}/index/*`],
    'Queries on the GSIs of the one control-plane table (gsi1, gsi2 and any added later): index ARNs of this table only.',
  );
  allow(['dynamodb:DescribeTable'], [data.table.tableArn]);

  // SqsQueue: the events queue and the agents' command queues, created at runtime under the prefix.
  allow(
    [
      'sqs:CreateQueue',
      'sqs:DeleteQueue',
      'sqs:GetQueueUrl',
      'sqs:GetQueueAttributes',
      'sqs:SetQueueAttributes',
      'sqs:SendMessage',
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:ChangeMessageVisibility',
    ],
    [`arn:${partition}:sqs:${region}:${account}:${settings.queuePrefix}*`],
    `Agents' per-node command queues are created and removed at runtime, so their names are unknown at deploy time; the grant is limited to this deployment's queue prefix "${settings.queuePrefix}" in this account and region.`,
  );
  // EventBridgeScheduler: schedules of our group only; the group itself belongs to the stack.
  allow(
    [
      'scheduler:CreateSchedule',
      'scheduler:UpdateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetSchedule',
    ],
    [`arn:${partition}:scheduler:${region}:${account}:schedule/${settings.scheduleGroup}/*`],
    `Schedules are created at runtime (one per user schedule) with names unknown at deploy time; limited to the stack's schedule group "${settings.scheduleGroup}".`,
  );
  allow(['scheduler:GetScheduleGroup'], [messaging.scheduleGroup.attrArn]);
  // ListQueues (the /health probe, filtered by prefix) and ListSchedules (filtered by group) have no
  // resource-level permissions in IAM: "*" is the only resource they accept.
  allow(
    ['sqs:ListQueues', 'scheduler:ListSchedules'],
    ['*'],
    'sqs:ListQueues and scheduler:ListSchedules support no resource-level permissions; they are read-only list calls and the only actions on "*".',
  );
  role.addToPrincipalPolicy(
    new PolicyStatement({
      actions: ['iam:PassRole'],
      resources: [messaging.schedulerRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
    }),
  );

  // S3Blobs: objects of the artifacts bucket; ListBucket also authorises HeadBucket (/health).
  allow(
    ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
    [data.artifacts.arnForObjects('*')],
    'Artifact keys (run outputs, checkpoints, uploads) are chosen at runtime; objects of the one artifacts bucket only.',
  );
  allow(['s3:ListBucket'], [data.artifacts.bucketArn]);

  // SsmSecrets: read the deployment's hierarchy (the API key the operator creates, config).
  const ssmPath = settings.ssmPrefix.replace(/\/$/, '');
  allow(
    ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'],
    [
      `arn:${partition}:ssm:${region}:${account}:parameter${ssmPath}`,
      `arn:${partition}:ssm:${region}:${account}:parameter${ssmPath}/*`,
    ],
    `Read-only on the deployment's SSM hierarchy ${settings.ssmPrefix}: the operator-created SecureString ${settings.ssmPrefix}api-key and config parameters.`,
  );
  // The vault's passwords: SecureStrings created and deleted at runtime, one per credential.
  allow(
    ['ssm:PutParameter', 'ssm:DeleteParameter'],
    [`arn:${partition}:ssm:${region}:${account}:parameter${ssmPath}/vault/*`],
    `Vault credentials are SecureString parameters named by ids made at runtime; limited to ${settings.ssmPrefix}vault/.`,
  );

  // BedrockChatModel (AI assistant): Converse is authorised as InvokeModel. Foundation models have no
  // account; a cross-region inference profile routes to the model in other regions.
  allow(
    ['bedrock:InvokeModel'],
    [`arn:${partition}:bedrock:*::foundation-model/*`, `arn:${partition}:bedrock:*:${account}:inference-profile/*`],
    'The assistant model is a setting (AI_MODEL_ID) and inference profiles invoke it in several regions; InvokeModel only, on foundation models and this account\'s inference profiles.',
  );
}

/** Post to and delete the connections of the WebSocket stage, nothing else of API Gateway. */
function grantManageConnections(role: Role, webSocket: WebSocket): void {
  const stack = Stack.of(role);
  const resource = webSocket.connectionsArn();
  role.addToPrincipalPolicy(
    new PolicyStatement({ effect: Effect.ALLOW, actions: ['execute-api:ManageConnections'], resources: [resource] }),
  );
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${flattenCfnReference(stack.resolve(resource))}]`,
    reason:
      'Connection ids are made by API Gateway at connect time; the grant covers the @connections of the one WebSocket API stage only.',
  });
}
