import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { ScheduleDriver } from '../schedule-driver.js';
import { functionAssetDir, readAssembly, synthesize, type LoadedAssembly } from './assembly.js';
import type { SqsEventSource } from './event-sources.js';
import { createApis } from './apis.js';
import { LambdaFunction, type InvokeResult } from './lambda.js';
import { formatDenials, startAwsCallChecker, type AwsCallChecker } from './iam/checker.js';
import { createResources } from './resources.js';
import type { PhysicalResource, Resolver } from './resolver.js';
import { byType, startEventSources, startScheduleDriver } from './triggers.js';

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
    const { httpHandler, httpStage, webSocket, wsStage, wsApi } = createApis({
      resources,
      physical,
      resolver,
      region,
      functionOf,
      invoke,
      checker,
    });
    if (webSocket) stops.push(() => webSocket.stop());
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

    // ---------------------------------------------------------------- event sources, schedules
    const triggerContext = { resources, physical, resolver, region, endpoint, functionOf, invoke, log };
    const eventSources = startEventSources(triggerContext);
    for (const source of eventSources) stops.push(() => source.stop());
    // EventBridge Scheduler fires schedules; the emulator only stores them: the driver plays the service.
    groups.push(...byType(resources, 'AWS::Scheduler::ScheduleGroup').map(([id]) => physical[id]!.ref));
    const runtimeGroup = deploymentSetting('SCHEDULE_GROUP');
    if (runtimeGroup && !groups.includes(runtimeGroup)) groups.push(runtimeGroup);
    const schedules = groups.length
      ? startScheduleDriver(groups, {
          region,
          endpoint,
          refreshMs: options.scheduleRefreshMs,
          functionOf,
          invoke,
          log,
        })
      : undefined;
    if (schedules) stops.push(schedules.stop);
    const driver = schedules?.driver;

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
