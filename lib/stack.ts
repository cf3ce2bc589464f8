import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Effect, PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
// cdk-nag's own rendering of a policy resource, so acknowledgements match its finding ids.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { Construct } from 'constructs';
import type { Config } from '../functions/core/config.js';
import type { RouteGroup, TableRoute } from '../functions/core/route.js';
import { AgentIdentity } from './agent-identity.js';
import { Api } from './api.js';
import { DOCS_ASSETS_SUBDIR, LAMBDA_TASK_ROOT, docsAssetsHooks, writeOpenApiFile } from './bundling.js';
import { Data } from './data.js';
import { InstallAssetsBucket } from './install-assets.js';
import { ControlPlaneFunction, reserveConcurrency } from './function.js';
import { EVENTS_ENTRY, WEBSOCKET_ENTRY, byGroup, groupEntry, pascal } from './groups.js';
import { Messaging } from './messaging.js';
import { Monitoring } from './monitoring.js';
import { FUNCTION_CAPABILITIES, grantCapabilities, type FunctionName } from './permissions.js';
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
  readonly monitoring: Monitoring;
  /** The HTTP API's endpoint, `https://<id>.execute-api.<region>.amazonaws.com`: the front's origin. */
  readonly httpApiEndpoint: string;
  /**
   * With `apiWaf`: the secret CloudFront sends as `x-fleet-origin` (lib/console.ts) and the HTTP
   * functions require, so the execute-api URL cannot go round the web ACL.
   */
  readonly originSecret?: Secret;
  /** Its name (`<ssmPrefix without the leading slash>origin-secret`), which CloudFront resolves at deploy. */
  readonly originSecretName?: string;
  /** Where the install files live (filled by the InstallAssetsStack). */
  readonly installAssets: InstallAssetsBucket;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props);
    const settings = readSettings(this);

    const data = new Data(this, 'Data', { ssmPrefix: settings.ssmPrefix });
    this.installAssets = new InstallAssetsBucket(this, 'InstallAssets', { accessLogs: data.accessLogs });
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
      METRICS_FLUSH_SECONDS: String(settings.metricsFlushSeconds),
      ...jwtEnvironment(settings.jwt),
      ...(settings.registryUrl ? { REGISTRY_URL: settings.registryUrl } : {}),
      ...(settings.outboundAllowlist ? { OUTBOUND_ALLOWLIST: settings.outboundAllowlist } : {}),
    } satisfies Partial<Record<keyof Config, string>>;
    const shared = { logLevel: settings.logLevel, logRetention: settings.logRetention };

    // Behind the web ACL, HTTP requests must carry the secret only CloudFront adds (functions/core/origin.ts).
    this.originSecretName = settings.apiWaf ? `${settings.ssmPrefix.slice(1)}origin-secret` : undefined;
    this.originSecret = this.originSecretName ? originSecret(this, this.originSecretName) : undefined;
    const originEnvironment = this.originSecretName
      ? { ORIGIN_SECRET_PARAMETER: `/aws/reference/secretsmanager/${this.originSecretName}` }
      : {};

    const openapiFile = writeOpenApiFile(props.routes);
    const http = byGroup((group) => {
      const isSystem = group === 'system';
      return new ControlPlaneFunction(this, `${pascal(group)}Function`, {
        ...shared,
        entry: groupEntry(group),
        description: `Control plane HTTP routes: ${group}`,
        memorySize: settings.lambdaMemory[group],
        environment: isSystem
          ? {
              ...environment,
              ...originEnvironment,
              DOCS_ASSETS_DIR: `${LAMBDA_TASK_ROOT}/${DOCS_ASSETS_SUBDIR}`,
              // install.sh travels with the docs assets; the agent, runtimes and images are objects.
              INSTALL_ASSETS_DIR: `${LAMBDA_TASK_ROOT}/${DOCS_ASSETS_SUBDIR}`,
              INSTALL_ASSETS_BUCKET: this.installAssets.bucket.bucketName,
            }
          : { ...environment, ...originEnvironment },
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
    // The minute schedule invokes it directly (asynchronously): two retries within the next
    // minutes, then the record of the failed firing in the events dead-letter queue.
    events.fn.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.minutes(10),
      onFailure: new SqsDestination(messaging.deadLetters),
    });
    messaging.addAppSchedules(events.fn);
    const websocket = new ControlPlaneFunction(this, 'WebSocketFunction', {
      ...shared,
      entry: WEBSOCKET_ENTRY,
      description: 'Control plane WebSocket API: $connect (API key, channel) and $disconnect',
      memorySize: settings.lambdaMemory.websocket,
      environment,
    });
    this.functions = { ...http, events, websocket };

    // Nodes authenticate to the control plane only; the agent function vends their queue credentials.
    const agentIdentity = new AgentIdentity(this, 'AgentIdentity', {
      queuePrefix: settings.queuePrefix,
      vendedBy: http.agent.role,
    });
    http.agent.fn.addEnvironment('AGENT_ROLE_ARN', agentIdentity.role.roleArn);

    // Each function only what its code paths call (lib/permissions.ts), checked locally by
    // `npm run start:stack` against every call the suites make.
    for (const [name, f] of Object.entries(this.functions))
      grantCapabilities(f.role, FUNCTION_CAPABILITIES[name as FunctionName], {
        data,
        messaging,
        settings,
        installAssets: this.installAssets.bucket,
      });

    const api = new Api(this, 'Api', {
      routes: props.routes,
      functions: byGroup((group) => http[group].fn),
      corsOrigins: settings.corsOrigins,
      logRetention: settings.logRetention,
      throttle: { rateLimit: settings.apiThrottleRate, burstLimit: settings.apiThrottleBurst },
    });
    this.httpApiEndpoint = api.api.apiEndpoint;
    if (this.originSecret && this.originSecretName)
      for (const f of Object.values(http))
        grantOriginSecret(f.role, this.originSecret, this.originSecretName);
    reserveConcurrency(this.functions, settings.reservedConcurrency);

    // Only the events worker pushes (log lines, the minute schedule's push, first frames after $connect).
    this.webSocket = new WebSocket(this, 'WebSocket', {
      handler: websocket.fn,
      logRetention: settings.logRetention,
    });
    events.fn.addEnvironment('WS_CALLBACK_URL', this.webSocket.callbackUrl);
    grantManageConnections(events.role, this.webSocket);

    this.monitoring = new Monitoring(this, 'Monitoring', {
      functions: this.functions,
      api,
      messaging,
      data,
      offlineNodesThreshold: settings.offlineNodesAlarm,
      eventsQueueAgeSeconds: settings.eventsQueueAgeAlarm,
      ...(settings.alarmTopicArn ? { alarmTopicArn: settings.alarmTopicArn } : {}),
      ...(settings.alarmEmail ? { alarmEmail: settings.alarmEmail } : {}),
    });

    // Behind the web ACL the execute-api URL refuses callers: the console stack's ApiUrl is the one.
    if (!this.originSecret)
      new CfnOutput(this, 'ApiUrl', {
        value: api.stage.url,
        description:
          'The execute-api URL; agents, the CLI and the console use the GpuFleetConsole stack ApiUrl',
      });
    new CfnOutput(this, 'WebSocketUrl', {
      value: this.webSocket.stage.url,
      description:
        'wss URL of the WebSocket API: ?channel=metrics, ?channel=logs&node_id=<id or name>, ?channel=doctor (&token=<api key> when API_AUTH is on)',
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

/** The JWT_* settings of the functions, when signed-in users are configured. */
function jwtEnvironment(jwt: Settings['jwt']): Partial<Record<keyof Config, string>> {
  if (!jwt) return {};
  return {
    JWT_ISSUER: jwt.issuer,
    ...(jwt.audience ? { JWT_AUDIENCE: jwt.audience } : {}),
    ...(jwt.roleClaim ? { JWT_ROLE_CLAIM: jwt.roleClaim } : {}),
    ...(jwt.roleMap ? { JWT_ROLE_MAP: jwt.roleMap } : {}),
    ...(jwt.jwksUrl ? { JWT_JWKS_URL: jwt.jwksUrl } : {}),
  };
}

/** The origin secret: generated by Secrets Manager, named after the deployment's SSM prefix. */
function originSecret(scope: Construct, secretName: string): Secret {
  const secret = new Secret(scope, 'OriginSecret', {
    secretName,
    description:
      'GPU fleet: the x-fleet-origin value CloudFront sends the HTTP API (the functions refuse requests without it)',
    generateSecretString: { passwordLength: 48, excludePunctuation: true },
    removalPolicy: RemovalPolicy.DESTROY,
  });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason:
      'CloudFront takes the value at deploy (a dynamic reference), so a rotation lands with the next deploy of both stacks; the functions re-read it every 5 minutes.',
  });
  return secret;
}

/** Read the origin secret, through Parameter Store's reference to Secrets Manager, nothing more. */
function grantOriginSecret(role: Role, secret: Secret, secretName: string): void {
  const stack = Stack.of(role);
  role.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['ssm:GetParameter'],
      resources: [
        stack.formatArn({
          service: 'ssm',
          resource: 'parameter',
          resourceName: `aws/reference/secretsmanager/${secretName}`,
        }),
      ],
    }),
  );
  role.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['secretsmanager:GetSecretValue'],
      resources: [secret.secretArn],
    }),
  );
}

/** Post to and delete the connections of the WebSocket stage, nothing else of API Gateway. */
function grantManageConnections(role: Role, webSocket: WebSocket): void {
  const stack = Stack.of(role);
  const resource = webSocket.connectionsArn();
  role.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['execute-api:ManageConnections'],
      resources: [resource],
    }),
  );
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${flattenCfnReference(stack.resolve(resource))}]`,
    reason:
      'Connection ids are made by API Gateway at connect time; the grant covers the @connections of the one WebSocket API stage only.',
  });
}
