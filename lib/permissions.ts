import { Stack, Validations } from 'aws-cdk-lib';
import { Effect, PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
// cdk-nag's own rendering of a policy resource, so acknowledgements match its finding ids.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import { REGISTRY_AUTH_SECRET } from '../functions/commander/build/registry.js';
import type { RouteGroup } from '../functions/core/route.js';
import { nodeQueuesArnPattern } from '../functions/nodes/queue-policy.js';
import { secretName } from '../functions/commander/vault.js';
import { NOVITA_KEY_SECRET } from '../functions/ports/novita-cloud.js';
import { SCRAPE_TOKEN_SECRET } from '../functions/observability/routes.js';
import { SIGNING_SECRET } from '../functions/training/notify.js';
import { INSTALL_ASSETS_PREFIX } from '../functions/system/install.js';
import type { Data } from './data.js';
import type { Messaging } from './messaging.js';
import type { Settings } from './settings.js';

/**
 * What a function's code does with AWS, one capability per port use (functions/ports, adapters in
 * functions/adapters). Each expands to the IAM actions its adapter calls make, on its resources only.
 */
export type Capability =
  /** DynamoStore: items and queries of the one table and its indexes. */
  | 'store'
  /** DescribeTable: the table probe of /api/system/*. */
  | 'table-status'
  /** /health and the doctor channel: DescribeTable, ListQueues, GetScheduleGroup, HeadBucket. */
  | 'health'
  /** emit(): messages to the events queue. */
  | 'emit'
  /** sendCommand(): messages to the nodes' command queues. */
  | 'command-nodes'
  /** registerNode(): creates a node's command queue and its dead-letter queue, or converges them. */
  | 'register-nodes'
  /** The agents' HTTP long poll: receive and delete their commands. */
  | 'poll-nodes'
  /** Scheduler.upsert: create or replace schedules of the group, passing the delivery role. */
  | 'schedule'
  | 'unschedule'
  /** Scheduler.list (and the GetSchedule it makes per schedule). */
  | 'read-schedules'
  /** GET /install/{file}: HeadObject and a presigned GetObject of the install bucket's files. */
  | 'install-assets'
  | 'read-artifacts'
  | 'write-artifacts'
  /** Blobs.delete asks HeadObject first (authorised as GetObject). */
  | 'delete-artifacts'
  /** The API key (SSM SecureString the operator creates): user routes and $connect check it. */
  | 'api-key'
  | 'novita-key'
  | 'registry-auth'
  /** The token a Prometheus server may scrape /metrics with instead of an API key. */
  | 'scrape-token'
  /** The training webhook signing key: read, and created on first delivery. */
  | 'webhook-signing-key'
  /** Vault credentials: written and deleted, never read back by the control plane. */
  | 'vault'
  /** The inline logins of swarm join-remote jobs (`install/<jobId>`): written, and deleted when the job ends. */
  | 'install-secret'
  /** An installing agent's login (vault or inline) for the install it runs; inline ones deleted when the job ends. */
  | 'install-login'
  /** The AI assistant's model (Bedrock Converse). */
  | 'assistant'
  /** X-Ray active tracing: Lambda's X-Ray daemon sends the function's segments with the role's credentials. */
  | 'trace';

export type FunctionName = RouteGroup | 'events' | 'websocket';

/**
 * Each function's capabilities, read from its code paths (the routes of its group, or the event
 * handlers). The system function is API Gateway's `$default` target and falls back to the whole
 * route table (functions/groups/system.ts), so it gets the union of the HTTP groups: see SYSTEM.
 */
const OWN: Record<Exclude<FunctionName, 'system'>, Capability[]> = {
  // Registration creates the node's queue; the HTTP long poll reads it; task files are parked in the
  // bucket. (Its sts:AssumeRole of the agent role is granted with that role: lib/agent-identity.ts.)
  // It also hands an installing agent the login of its install (host.install), and ends the job.
  agent: [
    'store',
    'api-key',
    'emit',
    'command-nodes',
    'register-nodes',
    'poll-nodes',
    'write-artifacts',
    'install-login',
    // Checkpoints: manifests read and written, chunks listed, fetched, presigned and dropped.
    'read-artifacts',
    'delete-artifacts',
  ],
  // /api/system/* probes the table only.
  orchestrator: ['store', 'api-key', 'emit', 'command-nodes', 'table-status'],
  // Vault, the assistant and image builds (registry credentials) live here only.
  fleet: [
    'store',
    'api-key',
    'emit',
    'command-nodes',
    'vault',
    'install-secret',
    'assistant',
    'registry-auth',
  ],
  cluster: [
    'store',
    'api-key',
    'emit',
    'command-nodes',
    'read-artifacts',
    'write-artifacts',
    'delete-artifacts',
  ],
  vision: [
    'store',
    'api-key',
    'emit',
    'command-nodes',
    'read-artifacts',
    'write-artifacts',
    'delete-artifacts',
  ],
  // Job schedules are created and removed with their jobs; runs launch through node commands.
  // Checkpoints are listed and cleared here (and go with their job).
  training: [
    'store',
    'api-key',
    'emit',
    'command-nodes',
    'schedule',
    'unschedule',
    'read-artifacts',
    'delete-artifacts',
  ],
  // Novita's cloud API is the work; AWS is the table and the events queue.
  novita: ['store', 'api-key', 'emit', 'novita-key'],
  // Every event handler: retries and repairs schedules, delivers signed webhooks, cleans outputs,
  // pushes doctor frames (health), drives Novita instances.
  events: [
    'store',
    'emit',
    'command-nodes',
    'health',
    'schedule',
    'unschedule',
    'read-schedules',
    'read-artifacts',
    'write-artifacts',
    'delete-artifacts',
    'novita-key',
    'webhook-signing-key',
  ],
  // $connect checks the key and records the connection; the first frame is the events worker's.
  websocket: ['store', 'api-key', 'emit'],
};

const HTTP_GROUPS = ['agent', 'orchestrator', 'fleet', 'cluster', 'vision', 'training', 'novita'] as const;
// Its own: /health probes everything, /metrics takes a scrape token.
const SYSTEM: Capability[] = [
  ...new Set<Capability>(['health', 'scrape-token', 'install-assets', ...HTTP_GROUPS.flatMap((g) => OWN[g])]),
];

const traced = (caps: Capability[]): Capability[] => [...caps, 'trace'];

/** Every function is traced (functions/core/lambda.ts). */
export const FUNCTION_CAPABILITIES: Record<FunctionName, readonly Capability[]> = {
  agent: traced(OWN.agent),
  orchestrator: traced(OWN.orchestrator),
  fleet: traced(OWN.fleet),
  cluster: traced(OWN.cluster),
  vision: traced(OWN.vision),
  training: traced(OWN.training),
  novita: traced(OWN.novita),
  events: traced(OWN.events),
  websocket: traced(OWN.websocket),
  system: traced(SYSTEM),
};

interface Resources {
  data: Data;
  messaging: Messaging;
  settings: Settings;
  /** The install files' bucket (lib/install-assets.ts). */
  installAssets?: IBucket;
}

/**
 * Grants `role` exactly the capabilities given, resource by resource. Each wildcard is acknowledged
 * for cdk-nag (AwsSolutions-IAM5) on this role only, with its reason.
 */
export function grantCapabilities(
  role: Role,
  capabilities: readonly Capability[],
  { data, messaging, settings, installAssets }: Resources,
): void {
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
  const table = data.table.tableArn;
  const nodeQueues = nodeQueuesArnPattern(partition, region, account, settings.queuePrefix);
  const nodeQueuesReason = `Each node's command queue (and its dead-letter queue) is created at registration, named by a node id made at runtime; limited to "${settings.queuePrefix}node-*" in this account and region.`;
  const schedules = `arn:${partition}:scheduler:${region}:${account}:schedule/${settings.scheduleGroup}/*`;
  const schedulesReason = `Schedules are created at runtime (one per job, retry or sweep) with names unknown at deploy time; limited to the stack's schedule group "${settings.scheduleGroup}".`;
  const parameter = (name: string) =>
    `arn:${partition}:ssm:${region}:${account}:parameter${settings.ssmPrefix}${name}`;
  const objects = data.artifacts.arnForObjects('*');
  const objectsReason =
    'Artifact keys (run outputs, LoRAs, uploads) are chosen at runtime; objects of the one artifacts bucket only.';

  for (const capability of new Set(capabilities)) {
    switch (capability) {
      case 'store':
        allow(
          [
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:DeleteItem',
            'dynamodb:Query',
          ],
          [table, `${table}/index/*`],
          'Queries on the GSIs of the one control-plane table (gsi1, gsi2 and any added later): index ARNs of this table only.',
        );
        break;
      case 'table-status':
        allow(['dynamodb:DescribeTable'], [table]);
        break;
      case 'health':
        allow(['dynamodb:DescribeTable'], [table]);
        allow(['scheduler:GetScheduleGroup'], [messaging.scheduleGroup.attrArn]);
        // HeadBucket is authorised as ListBucket.
        allow(['s3:ListBucket'], [data.artifacts.bucketArn]);
        allow(
          ['sqs:ListQueues'],
          ['*'],
          'sqs:ListQueues (the /health probe, filtered by the queue prefix) supports no resource-level permissions: "*" is the only resource it accepts.',
        );
        break;
      case 'emit':
        allow(['sqs:GetQueueUrl', 'sqs:SendMessage'], [messaging.events.queueArn]);
        break;
      case 'command-nodes':
        allow(['sqs:GetQueueUrl', 'sqs:SendMessage'], [nodeQueues], nodeQueuesReason);
        break;
      case 'register-nodes':
        allow(
          ['sqs:GetQueueUrl', 'sqs:CreateQueue', 'sqs:SetQueueAttributes', 'sqs:GetQueueAttributes'],
          [nodeQueues],
          nodeQueuesReason,
        );
        break;
      case 'poll-nodes':
        allow(['sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:DeleteMessage'], [nodeQueues], nodeQueuesReason);
        break;
      case 'schedule':
        allow(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule'], [schedules], schedulesReason);
        // The group belongs to the stack; the adapter looks it up once before its first upsert.
        allow(['scheduler:GetScheduleGroup'], [messaging.scheduleGroup.attrArn]);
        role.addToPrincipalPolicy(
          new PolicyStatement({
            actions: ['iam:PassRole'],
            resources: [messaging.schedulerRole.roleArn],
            conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
          }),
        );
        break;
      case 'unschedule':
        allow(['scheduler:DeleteSchedule'], [schedules], schedulesReason);
        break;
      case 'read-schedules':
        allow(['scheduler:GetSchedule'], [schedules], schedulesReason);
        allow(
          ['scheduler:ListSchedules'],
          ['*'],
          'scheduler:ListSchedules (filtered by the stack\'s group) supports no resource-level permissions: "*" is the only resource it accepts.',
        );
        break;
      case 'install-assets':
        if (!installAssets) throw new Error('install-assets needs the install bucket');
        allow(
          ['s3:GetObject'],
          [installAssets.arnForObjects(`${INSTALL_ASSETS_PREFIX}*`)],
          'install.sh downloads (agent bundle, runtimes, images) under install/ of the install bucket only.',
        );
        // A missing file is a 404 only with ListBucket; the bucket holds install files only.
        allow(['s3:ListBucket'], [installAssets.bucketArn]);
        break;
      case 'read-artifacts':
        allow(['s3:GetObject'], [objects], objectsReason);
        allow(['s3:ListBucket'], [data.artifacts.bucketArn]);
        break;
      case 'write-artifacts':
        allow(['s3:PutObject'], [objects], objectsReason);
        break;
      case 'delete-artifacts':
        allow(['s3:GetObject', 's3:DeleteObject'], [objects], objectsReason);
        break;
      case 'api-key':
        allow(['ssm:GetParameter'], [parameter('api-key')]);
        break;
      case 'novita-key':
        allow(['ssm:GetParameter'], [parameter(NOVITA_KEY_SECRET)]);
        break;
      case 'registry-auth':
        allow(['ssm:GetParameter'], [parameter(REGISTRY_AUTH_SECRET)]);
        break;
      case 'scrape-token':
        allow(['ssm:GetParameter'], [parameter(SCRAPE_TOKEN_SECRET)]);
        break;
      case 'webhook-signing-key':
        // The key is made on first delivery (CloudFormation cannot create SecureStrings), so the one
        // function that signs may create exactly this parameter: a grant of its own rather than a
        // path under vault/, where the fleet function's vault writes could replace it.
        allow(['ssm:GetParameter', 'ssm:PutParameter'], [parameter(SIGNING_SECRET)]);
        break;
      case 'vault':
        allow(
          ['ssm:PutParameter', 'ssm:DeleteParameter'],
          [parameter(secretName('*'))],
          `Vault credentials are SecureString parameters named by ids made at runtime; limited to ${settings.ssmPrefix}${secretName('*')}.`,
        );
        break;
      case 'install-secret':
        allow(
          ['ssm:PutParameter', 'ssm:DeleteParameter'],
          [parameter('install/*')],
          `Inline install logins are SecureString parameters named by job ids made at runtime; limited to ${settings.ssmPrefix}install/*.`,
        );
        break;
      case 'install-login':
        allow(
          ['ssm:GetParameter'],
          [parameter(secretName('*')), parameter('install/*')],
          'An installing agent gets the login of the install it runs; the credential is named by the job, made at runtime.',
        );
        allow(
          ['ssm:DeleteParameter'],
          [parameter('install/*')],
          `Inline install logins are deleted when their job ends; limited to ${settings.ssmPrefix}install/*.`,
        );
        break;
      case 'assistant':
        // Converse is authorised as InvokeModel. Foundation models have no account; a cross-region
        // inference profile routes to the model in other regions.
        allow(
          ['bedrock:InvokeModel'],
          [
            `arn:${partition}:bedrock:*::foundation-model/*`,
            `arn:${partition}:bedrock:*:${account}:inference-profile/*`,
          ],
          "The assistant model is a setting (AI_MODEL_ID) and inference profiles invoke it in several regions; InvokeModel only, on foundation models and this account's inference profiles.",
        );
        break;
      case 'trace':
        allow(
          ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          ['*'],
          'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions: "*" is the only resource they accept.',
        );
        break;
    }
  }
}
