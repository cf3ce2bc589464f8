import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface WebSocketProps {
  handler: IFunction;
  logRetention: RetentionDays;
}

/** The stage name: `wss://<api>.execute-api.<region>.amazonaws.com/live?channel=...`. */
export const WS_STAGE = 'live';

// WebSocket context variables; no query string, so a `?token=` API key never reaches the logs.
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  eventType: '$context.eventType',
  routeKey: '$context.routeKey',
  connectionId: '$context.connectionId',
  status: '$context.status',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
});

/**
 * The WebSocket API: one URL per API, so the spec's `/ws/metrics`, `/ws/logs/{node_id}` and
 * `/ws/doctor` are `?channel=metrics`, `?channel=logs&node_id=` and `?channel=doctor` here.
 * `$connect` and `$disconnect` go to one function; frames are pushed through the Management API.
 */
export class WebSocket extends Construct {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  readonly accessLogs: LogGroup;
  /** What the publishing functions set as WS_CALLBACK_URL. */
  readonly callbackUrl: string;

  constructor(scope: Construct, id: string, props: WebSocketProps) {
    super(scope, id);
    const integration = (name: string) => new WebSocketLambdaIntegration(name, props.handler);
    this.api = new WebSocketApi(this, 'Api', {
      description: 'GPU fleet control plane: live metrics, node logs and health',
      connectRouteOptions: { integration: integration('ConnectIntegration') },
      disconnectRouteOptions: { integration: integration('DisconnectIntegration') },
    });
    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: WS_STAGE,
      autoDeploy: true,
      throttle: { rateLimit: 50, burstLimit: 100 },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    const stack = Stack.of(this);
    this.callbackUrl = `https://${this.api.apiId}.execute-api.${stack.region}.${stack.urlSuffix}/${WS_STAGE}`;

    for (const route of ['$connect', '$disconnect']) {
      const cfnRoute = this.api.node.findChild(`${route}-Route`).node.defaultChild;
      if (cfnRoute) {
        Validations.of(cfnRoute as Construct).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            '$connect checks the API key in the function (Authorization header or token query parameter, as user routes do when API_AUTH is on); $disconnect only removes the caller\'s own connection record.',
        });
      }
    }
  }

  /** `execute-api:ManageConnections` on this stage's connections only (post and delete). */
  connectionsArn(): string {
    return Stack.of(this).formatArn({
      service: 'execute-api',
      resource: this.api.apiId,
      resourceName: `${WS_STAGE}/*/@connections/*`,
    });
  }
}
