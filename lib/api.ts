import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CORS_ALLOW_HEADERS,
  CORS_ALLOW_METHODS,
  CORS_EXPOSE_HEADERS,
  CORS_MAX_AGE_SECONDS,
} from '../functions/core/cors.js';
import type { AnyRoute, RouteGroup, TableRoute } from '../functions/core/route.js';
import { pascal } from './groups.js';

export interface ApiProps {
  routes: readonly TableRoute[];
  functions: Record<RouteGroup, IFunction>;
  corsOrigins: string[];
  logRetention: RetentionDays;
  /** Stage throttling: steady requests per second and the burst above it. */
  throttle: { rateLimit: number; burstLimit: number };
}

// HTTP API context variables: one JSON line per request.
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  method: '$context.httpMethod',
  path: '$context.path',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  latency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
  userAgent: '$context.identity.userAgent',
});

/**
 * The path API Gateway is given for a route. HTTP API route paths may not end in `/`; the table's
 * router accepts either form, and a request with the slash reaches it through `$default`.
 */
export const apiGatewayPath = (path: string) => (path.length > 1 ? path.replace(/\/+$/, '') : path);
export const routeKeyOf = (route: Pick<AnyRoute, 'method' | 'path'>) =>
  `${route.method} ${apiGatewayPath(route.path)}`;

/** The HTTP API: every route of the table to its group's function, everything else to `$default`. */
export class Api extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const stack = Stack.of(this);

    // One integration per group. Unscoped: a single invoke permission per function instead of one
    // per route, which would outgrow Lambda's 20 KB resource policy as routes are added.
    const integrations = new Map<RouteGroup, HttpLambdaIntegration>();
    const integrationOf = (group: RouteGroup) => {
      let integration = integrations.get(group);
      if (!integration) {
        integration = new HttpLambdaIntegration(`${pascal(group)}Integration`, props.functions[group], {
          scopePermissionToRoute: false,
        });
        integrations.set(group, integration);
      }
      return integration;
    };

    this.api = new HttpApi(this, 'HttpApi', {
      description: 'GPU fleet control plane',
      createDefaultStage: false, // created below, with access logging
      // The system function answers 404/405 and serves ids holding a raw `/`.
      defaultIntegration: integrationOf('system'),
      corsPreflight: {
        allowOrigins: props.corsOrigins,
        allowMethods: CORS_ALLOW_METHODS.map((m) => CorsHttpMethod[m]),
        allowHeaders: [...CORS_ALLOW_HEADERS],
        exposeHeaders: [...CORS_EXPOSE_HEADERS],
        maxAge: Duration.seconds(CORS_MAX_AGE_SECONDS),
      },
    });
    // The unscoped permission covers `stage/method/path`; `$default` invokes as `stage/$default`.
    props.functions.system.addPermission('DefaultRouteInvoke', {
      principal: new ServicePrincipal('apigateway.amazonaws.com'),
      sourceArn: stack.formatArn({
        service: 'execute-api',
        resource: this.api.apiId,
        resourceName: '*/$default',
      }),
    });

    const groupOfKey = new Map<string, RouteGroup>();
    for (const route of props.routes) {
      const key = routeKeyOf(route);
      const claimed = groupOfKey.get(key);
      if (claimed === route.group) continue; // `/x` and `/x/` in one group: one API route
      if (claimed)
        throw new Error(`Route ${key} is declared by both the ${claimed} and ${route.group} groups`);
      groupOfKey.set(key, route.group);
      this.api.addRoutes({
        path: apiGatewayPath(route.path),
        methods: [HttpMethod[route.method]],
        integration: integrationOf(route.group),
      });
    }

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      autoDeploy: true,
      // Every route inherits it; API Gateway answers 429 past it, before any function runs.
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });

    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Authorization happens in the functions: user routes check the API key from SSM when API_AUTH is on, agent routes check the node credential, and health/docs are public by design.',
    });
  }
}
