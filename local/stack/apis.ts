/**
 * The stack's HTTP and WebSocket APIs as API Gateway serves them: routes, integrations and stages
 * read from the template, each route's function invoked with its payload format.
 */
import type { IncomingMessage } from 'node:http';
import { createHttpApi, type CorsConfiguration, type HttpRoute } from './http-api.js';
import { connectionArn, type AwsCallChecker } from './iam/checker.js';
import type { InvokeResult } from './lambda.js';
import type { PhysicalResource, Resolver, TemplateResource } from './resolver.js';
import { byType } from './triggers.js';
import { createWebSocketApi } from './websocket-api.js';

export interface ApiContext {
  resources: Record<string, TemplateResource>;
  physical: Record<string, PhysicalResource>;
  resolver: Resolver;
  region: string;
  functionOf: (value: unknown) => string | undefined;
  invoke: (id: string, event: unknown) => Promise<InvokeResult>;
  /** Checks the WebSocket Management API calls against each function's role, when on. */
  checker: AwsCallChecker | undefined;
}

export function createApis(ctx: ApiContext) {
  const { resources, physical, resolver, region, functionOf, invoke, checker } = ctx;
  const integrations = new Map<string, { functionId?: string; payload: string; timeoutMs: number }>();
  for (const [id, resource] of byType(resources, 'AWS::ApiGatewayV2::Integration')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    integrations.set(physical[id]!.ref, {
      functionId: functionOf(p.IntegrationUri),
      payload: String(p.PayloadFormatVersion ?? '1.0'),
      timeoutMs: Number(p.TimeoutInMillis ?? 30_000),
    });
  }
  const routesOf = (apiId: string) =>
    byType(resources, 'AWS::ApiGatewayV2::Route')
      .map(([, r]) => resolver.resolve<Record<string, unknown>>(r.Properties ?? {}))
      .filter((p) => p.ApiId === apiId)
      .map((p) => ({
        routeKey: String(p.RouteKey),
        integration: integrations.get(String(p.Target ?? '').replace(/^integrations\//, '')),
      }));
  const stageOf = (apiId: string) =>
    byType(resources, 'AWS::ApiGatewayV2::Stage')
      .map(([, r]) => resolver.resolve<Record<string, unknown>>(r.Properties ?? {}))
      .find((p) => p.ApiId === apiId)?.StageName as string | undefined;

  const apis = byType(resources, 'AWS::ApiGatewayV2::Api').map(([id, r]) => ({
    id,
    props: resolver.resolve<Record<string, unknown>>(r.Properties ?? {}),
  }));
  const httpApi = apis.find((a) => a.props.ProtocolType === 'HTTP');
  const wsApi = apis.find((a) => a.props.ProtocolType === 'WEBSOCKET');
  let httpHandler: ReturnType<typeof createHttpApi> | undefined;
  let httpStage = '$default';
  if (httpApi) {
    const apiId = physical[httpApi.id]!.ref;
    httpStage = stageOf(apiId) ?? '$default';
    const routes: HttpRoute[] = [];
    for (const route of routesOf(apiId)) {
      const target = route.integration;
      if (!target?.functionId)
        throw new Error(`HTTP route ${route.routeKey} has no Lambda integration the local stack can run`);
      if (target.payload !== '2.0')
        throw new Error(`HTTP route ${route.routeKey}: payload format ${target.payload} is not served`);
      routes.push({
        routeKey: route.routeKey,
        functionLogicalId: target.functionId,
        payloadFormatVersion: target.payload,
        timeoutMs: target.timeoutMs,
      });
    }
    httpHandler = createHttpApi({
      apiId,
      accountId: resolver.pseudo.accountId,
      stage: httpStage,
      routes,
      cors: httpApi.props.CorsConfiguration as CorsConfiguration | undefined,
      invoke,
    });
  }
  let webSocket: ReturnType<typeof createWebSocketApi> | undefined;
  let wsStage = '';
  if (wsApi) {
    const apiId = physical[wsApi.id]!.ref;
    wsStage = stageOf(apiId) ?? 'live';
    const routes: Record<string, string> = {};
    for (const route of routesOf(apiId))
      if (route.integration?.functionId) routes[route.routeKey] = route.integration.functionId;
    webSocket = createWebSocketApi({
      apiId,
      stage: wsStage,
      routes,
      routeSelectionExpression: wsApi.props.RouteSelectionExpression as string | undefined,
      invoke,
      ...(checker
        ? {
            authorize: async (req: IncomingMessage, connectionId: string) => {
              const method = (req.method ?? 'POST') as 'POST' | 'GET' | 'DELETE';
              const arn = connectionArn({
                region,
                account: resolver.pseudo.accountId,
                apiId,
                stage: wsStage,
                method,
                connectionId,
              });
              const caller = checker.callerOf(req.headers, req.url) ?? '(unknown caller)';
              return (await checker.checkManagementApiCall(caller, arn)).allowed;
            },
          }
        : {}),
    });
  }
  return { httpHandler, httpStage, webSocket, wsStage, wsApi };
}
