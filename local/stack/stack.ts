import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { EventBridgeScheduler } from '../../functions/adapters/eventbridge-scheduler.js';
import { ScheduleDriver } from '../schedule-driver.js';
import { functionAssetDir, readAssembly, synthesize, type LoadedAssembly } from './assembly.js';
import { SqsEventSource } from './event-sources.js';
import { createHttpApi, type CorsConfiguration, type HttpRoute } from './http-api.js';
import { LambdaFunction, type InvokeResult } from './lambda.js';
import { connectionArn, formatDenials, startAwsCallChecker, type AwsCallChecker } from './iam/checker.js';
import { createResources } from './resources.js';
import type { PhysicalResource, Resolver, TemplateResource } from './resolver.js';
import { createWebSocketApi } from './websocket-api.js';

/** The endpoint and credentials a function's AWS SDK uses. */
export interface AwsAccess {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface StackOptions {
  port?: number;
  host?: string;
  /** A synthesized cloud assembly to run; without it the app is synthesized in this process. */
  cdkOut?: string;
  /** The stack in cdkOut, when it holds several. */
  stackName?: string;
  /** Context on top of cdk.json's for the synth (apiAuth, corsOrigins...). */
  context?: Record<string, unknown>;
  /** Names of this start: prefixed to every physical name; default a fresh one. */
  prefix?: string;
  /** Variables added to every function's environment, over the template's (test knobs). */
  environment?: Record<string, string>;
  /** Where each function's AWS SDK calls go; default the permission checker in front of the emulator. */
  awsFor?: (functionLogicalId: string) => AwsAccess;
  /**
   * Check every AWS call of a function against its role in the template (local/stack/iam); default
   * true, unless awsFor sends the calls elsewhere. Off, calls go to the emulator with this process's credentials.
   */
  checkPermissions?: boolean;
  /** Concurrent execution environments per function (default 10). */
  maxConcurrency?: number;
  /** The API key created in SSM when the functions check one; default a random key. */
  apiKey?: string;
  scheduleRefreshMs?: number;
  /** Leave the emulator resources in place on stop. */
  keepResources?: boolean;
  log?: (message: string) => void;
}

export interface RunningStack {
  /** The HTTP API's URL (its stage), locally. */
  url: string;
  /** The WebSocket API's stage URL, locally. */
  wsUrl: string;
  /** The stack's outputs, resolved, execute-api URLs pointing here. */
  outputs: Record<string, string>;
  /** The API key the functions check (in SSM), when API auth is on. */
  apiKey?: string;
  prefix: string;
  assembly: LoadedAssembly;
  physical: Record<string, PhysicalResource>;
  resolver: Resolver;
  functions: Record<string, LambdaFunction>;
  /** The permission checker the functions' AWS calls go through (absent with checkPermissions: false). */
  checker?: AwsCallChecker;
  eventSources: SqsEventSource[];
  driver?: ScheduleDriver;
  stop(): Promise<void>;
}

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TASK_ROOT = '/var/task';

/** `stk-<time>-<random>`: valid in queue, table, bucket, schedule group and SSM names. */
export const newPrefix = () => `stk-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;

const byType = (resources: Record<string, TemplateResource>, type: string) =>
  Object.entries(resources).filter(([, r]) => r.Type === type);

/**
 * The synthesized stack, run locally: its resources created on the emulator at AWS_ENDPOINT_URL,
 * its functions' bundles run as Lambda runs them, behind its HTTP and WebSocket APIs, fed by its
 * event source mappings and schedules.
 */
export async function startStack(options: StackOptions = {}): Promise<RunningStack> {
  const endpoint = process.env.AWS_ENDPOINT_URL;
  if (!endpoint)
    throw new Error('AWS_ENDPOINT_URL is unset: start:stack runs on an AWS emulator (moto, LocalStack)');
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const host = options.host ?? '127.0.0.1';
  const prefix = options.prefix ?? newPrefix();
  const log = options.log ?? (() => undefined);
  const stops: (() => Promise<void> | void)[] = [];
  const groups: string[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        log(`stop: ${String(error)}`);
      }
    }
  };

  try {
    let assembly: LoadedAssembly;
    if (options.cdkOut) assembly = readAssembly(options.cdkOut, options.stackName);
    else {
      const outdir = mkdtempSync(join(tmpdir(), `${prefix}-cdk-`));
      stops.push(() => rmSync(outdir, { recursive: true, force: true }));
      // The deployment's own names come from context, as with `cdk deploy -c queuePrefix=...`.
      assembly = await synthesize(outdir, {
        queuePrefix: `${prefix}-`,
        scheduleGroup: prefix,
        ssmPrefix: `/${prefix}/`,
        ...options.context,
      });
    }
    const resources = assembly.template.Resources;

    // The server listens first: its port goes into the functions' callback URLs.
    const server: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 8000, host, () => resolve());
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const local = `${host.includes(':') ? `[${host}]` : host}:${port}`;

    // execute-api host names of this stack's APIs resolve to this server.
    const apiIds: string[] = [];
    const rewrite = (value: string) =>
      apiIds.reduce(
        (v, apiId) =>
          v.replace(
            new RegExp(
              `(https|http|wss|ws)://${apiId}\\.execute-api\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?`,
              'g',
            ),
            (_, scheme: string) => `${scheme.startsWith('ws') ? 'ws' : 'http'}://${local}`,
          ),
        value,
      );

    const created = await createResources(assembly.template, prefix, { endpoint, region }, rewrite);
    stops.push(() =>
      options.keepResources
        ? undefined
        : created.remove({
            queuePrefix: deploymentSetting('QUEUE_PREFIX'),
            scheduleGroups: groups,
            ssmPrefix: deploymentSetting('SECRETS_PREFIX'),
          }),
    );
    const { physical, resolver } = created;
    for (const [id] of byType(resources, 'AWS::ApiGatewayV2::Api')) apiIds.push(physical[id]!.ref);

    // ---------------------------------------------------------------- permissions
    // Every AWS call of a function goes through the checker, which evaluates it against that
    // function's role in the template before the emulator sees it (local/stack/iam).
    const checker = !(options.checkPermissions ?? !options.awsFor)
      ? undefined
      : await startAwsCallChecker({
          upstream: endpoint,
          template: assembly.template,
          resolve: (value) => resolver.resolve(value),
          region,
          account: resolver.pseudo.accountId,
          onDenial: (call) => log(`AWS call denied: ${formatDenials([call])}`),
        });
    if (checker) stops.push(() => checker.stop());

    // ---------------------------------------------------------------- functions
    const access =
      options.awsFor ??
      (checker
        ? (id: string): AwsAccess => ({ endpoint: checker.endpoint, ...checker.credentialsFor(id) })
        : undefined) ??
      (() => ({
        endpoint,
        accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test',
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
        sessionToken: process.env.AWS_SESSION_TOKEN,
      }));
    const functions: Record<string, LambdaFunction> = {};
    const environments: Record<string, Record<string, string>> = {};
    for (const [id, resource] of byType(resources, 'AWS::Lambda::Function')) {
      const p = resource.Properties ?? {};
      const assetDir = functionAssetDir(assembly, id);
      const variables = resolver.resolve<Record<string, unknown>>(
        (p.Environment as { Variables?: unknown } | undefined)?.Variables ?? {},
      );
      const name = physical[id]!.ref;
      const memoryMb = Number(resolver.resolve(p.MemorySize ?? 128));
      const timeoutSeconds = Number(resolver.resolve(p.Timeout ?? 3));
      const handler = resolver.resolveString(p.Handler ?? 'index.handler');
      const aws = access(id);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(variables))
        env[k] = rewrite(String(v)).replace(new RegExp(`^${TASK_ROOT}(?=/|$)`), assetDir);
      Object.assign(env, options.environment ?? {}, {
        // The runtime's own variables.
        AWS_REGION: region,
        AWS_DEFAULT_REGION: region,
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
        AWS_EXECUTION_ENV: `AWS_Lambda_${String(resolver.resolve(p.Runtime ?? 'nodejs24.x'))}`,
        // No X-Ray daemon here: Powertools' tracer stays off (the grant is still checked from the template).
        POWERTOOLS_TRACE_ENABLED: 'false',
        LAMBDA_TASK_ROOT: assetDir,
        _HANDLER: handler,
        // The SDK's endpoint and credentials: the emulator, or whatever awsFor interposes.
        AWS_ENDPOINT_URL: aws.endpoint,
        AWS_ACCESS_KEY_ID: aws.accessKeyId,
        AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
        ...(aws.sessionToken ? { AWS_SESSION_TOKEN: aws.sessionToken } : {}),
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      environments[id] = env;
      functions[id] = new LambdaFunction({
        logicalId: id,
        functionName: name,
        arn: physical[id]!.arn!,
        assetDir,
        handler,
        env,
        memoryMb,
        timeoutSeconds,
        maxConcurrency: options.maxConcurrency ?? 10,
        runtimeModulesDir: PROJECT_ROOT,
        runtime: String(resolver.resolve(p.Runtime ?? 'nodejs24.x')),
      });
    }
    stops.push(() => Promise.all(Object.values(functions).map((f) => f.stop())).then(() => undefined));
    const byArn = new Map(Object.keys(functions).map((id) => [physical[id]!.arn!, id]));
    /** The function an ARN, a Lambda invocation URI or a name points at. */
    const functionOf = (value: unknown): string | undefined => {
      const text = String(value);
      for (const [arn, id] of byArn)
        if (text === arn || text.includes(`${arn}/`) || text === physical[id]!.ref) return id;
      return undefined;
    };
    const invoke = (id: string, event: unknown): Promise<InvokeResult> => {
      const fn = functions[id];
      if (!fn) throw new Error(`no function ${id}`);
      return fn.invoke(event);
    };

    // A setting every function shares (the deployment's names), read from the first that has it.
    function deploymentSetting(key: string): string | undefined {
      for (const env of Object.values(environments)) if (env[key]) return env[key];
      return undefined;
    }

    // ---------------------------------------------------------------- APIs
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
      stops.push(() => webSocket?.stop());
    }
    server.on('request', (req, res) => {
      void (async () => {
        if (webSocket && (await webSocket.management(req, res))) return;
        if (httpHandler) return httpHandler(req, res);
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Not Found"}');
      })().catch((error: unknown) => {
        log(`request failed: ${String(error)}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"message":"Internal Server Error"}');
      });
    });
    server.on('upgrade', (req, socket, head) => {
      if (webSocket?.upgrade(req, socket, head)) return;
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });

    // ---------------------------------------------------------------- API key
    let apiKey: string | undefined;
    if (Object.values(environments).some((env) => env.API_AUTH === 'true')) {
      const outputName = assembly.template.Outputs?.ApiKeyParameter?.Value;
      const name = outputName
        ? resolver.resolveString(outputName)
        : `${deploymentSetting('SECRETS_PREFIX') ?? '/'}api-key`;
      apiKey = options.apiKey ?? randomBytes(24).toString('base64url');
      const ssm = new SSMClient({ region, endpoint });
      // What the operator does once per deployment (CloudFormation cannot create SecureStrings).
      await ssm.send(
        new PutParameterCommand({ Name: name, Value: apiKey, Type: 'SecureString', Overwrite: true }),
      );
      ssm.destroy();
    }

    // ---------------------------------------------------------------- event sources
    const eventSources: SqsEventSource[] = [];
    for (const [, resource] of byType(resources, 'AWS::Lambda::EventSourceMapping')) {
      const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
      if (p.Enabled === false) continue;
      const sourceArn = String(p.EventSourceArn ?? '');
      const queueId = Object.keys(physical).find(
        (id) => physical[id]!.arn === sourceArn && resources[id]!.Type === 'AWS::SQS::Queue',
      );
      const functionId = functionOf(p.FunctionName);
      if (!queueId || !functionId) {
        log(
          `event source ${sourceArn} → ${String(p.FunctionName)}: only SQS queues of this stack are polled`,
        );
        continue;
      }
      const source = new SqsEventSource({
        functionLogicalId: functionId,
        queueUrl: physical[queueId]!.ref,
        queueArn: sourceArn,
        region,
        endpoint,
        batchSize: Number(p.BatchSize ?? 10),
        maximumBatchingWindowSeconds: Number(p.MaximumBatchingWindowInSeconds ?? 0),
        reportBatchItemFailures: ((p.FunctionResponseTypes as string[] | undefined) ?? []).includes(
          'ReportBatchItemFailures',
        ),
        concurrency: Number(
          (p.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ?? 2,
        ),
        invoke,
        onError: (error) => log(`event source ${sourceArn}: ${String(error)}`),
      });
      source.start();
      eventSources.push(source);
      stops.push(() => source.stop());
    }

    // ---------------------------------------------------------------- schedules
    // EventBridge Scheduler fires schedules; the emulator only stores them: the driver plays the service.
    groups.push(...byType(resources, 'AWS::Scheduler::ScheduleGroup').map(([id]) => physical[id]!.ref));
    const runtimeGroup = deploymentSetting('SCHEDULE_GROUP');
    if (runtimeGroup && !groups.includes(runtimeGroup)) groups.push(runtimeGroup);
    let driver: ScheduleDriver | undefined;
    if (groups.length) {
      const sqs = new SQSClient({ region, endpoint });
      const schedulers = groups.map(
        (group) =>
          new EventBridgeScheduler({
            AWS_REGION: region,
            AWS_ENDPOINT_URL: endpoint,
            QUEUE_PREFIX: '',
            SCHEDULE_GROUP: group,
            SCHEDULE_TARGET_ARN: undefined,
            SCHEDULE_ROLE_ARN: undefined,
          }),
      );
      const urls = new Map<string, string>();
      driver = new ScheduleDriver({
        scheduler: {
          list: async () =>
            (await Promise.all(schedulers.map((s) => s.list())))
              .flat()
              .map((s) => ({ ...s, name: `${s.group}/${s.name}` })),
          upsert: () => Promise.reject(new Error('read-only')),
          get: () => Promise.reject(new Error('read-only')),
          delete: () => Promise.reject(new Error('read-only')),
          ping: () => Promise.resolve(),
        },
        refreshMs: options.scheduleRefreshMs,
        fire: async (schedule) => {
          const arn = schedule.target;
          const [, , service, , account, name] = arn.split(':');
          if (service !== 'sqs' || !name)
            throw new Error(`schedule ${schedule.name}: target ${arn} is not an SQS queue`);
          let url = urls.get(arn);
          if (!url) {
            url = (
              await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))
            ).QueueUrl!;
            urls.set(arn, url);
          }
          await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: schedule.payload }));
        },
      });
      driver.start();
      stops.push(() => {
        driver?.stop();
        sqs.destroy();
      });
    }

    const outputs: Record<string, string> = {};
    for (const [key, output] of Object.entries(assembly.template.Outputs ?? {}))
      outputs[key] = rewrite(resolver.resolveString(output.Value));
    const stagePath = httpStage === '$default' ? '' : `/${httpStage}`;
    return {
      url: `http://${local}${stagePath}`,
      wsUrl: wsApi ? `ws://${local}/${wsStage}` : '',
      outputs,
      apiKey,
      prefix,
      assembly,
      physical,
      resolver,
      functions,
      ...(checker ? { checker } : {}),
      eventSources,
      driver,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
