import { APP_SCHEDULES } from '../../../functions/schedules.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnElement } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteGroupDef } from '../../../functions/core/route-group.js';
import { TABLE_KEYS } from '../../../functions/core/table.js';
import { routes } from '../../../functions/routes.js';
import { DOCS_ASSETS } from '../../../functions/system/docs.js';
import { apiGatewayPath, routeKeyOf } from '../../../lib/api.js';
import { CONSOLE_STACK_NAME, createControlPlane, STACK_NAME } from '../../../lib/app.js';
import { DOCS_ASSETS_SUBDIR, PROJECT_ROOT } from '../../../lib/bundling.js';
import { ROUTE_GROUPS } from '../../../lib/groups.js';
import type { FunctionName } from '../../../lib/permissions.js';
import type { ControlPlaneStack } from '../../../lib/stack.js';

// The context `cdk synth` gives the app: cdk.json's flags and settings, and asset metadata (a CLI default).
const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
  context: Record<string, unknown>;
};
const context = {
  ...cdkJson.context,
  'aws:cdk:enable-asset-metadata': true,
  // The install files' asset (agent bundle, runtime archive) is built and checked by install-assets.test.ts.
  'aws:cdk:bundling-stacks': [STACK_NAME, CONSOLE_STACK_NAME],
};

type Resource = { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown> };

let stack: ControlPlaneStack;
let assembly: CloudAssembly;
let template: Template;
let resources: Record<string, Resource>;
let outdir: string | undefined;
afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

const logicalId = (element: CfnElement) =>
  Stack.of(element).resolve(Stack.of(element).getLogicalId(element)) as string;
const functionId = (group: keyof ControlPlaneStack['functions']) =>
  logicalId(stack.functions[group].fn.node.defaultChild as CfnElement);

const FUNCTIONS: FunctionName[] = [...ROUTE_GROUPS, 'events', 'websocket'];
const ITEMS = [
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
];
/** Every function is traced: what Lambda's X-Ray daemon sends with the role's credentials. */
const TRACE = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
const ARTIFACTS = ['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject'];

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown };
/** A function's role statements, its log group's aside. */
const policyStatements = (group: FunctionName): Statement[] =>
  (
    resources[
      logicalId(stack.functions[group].role.node.findChild('DefaultPolicy').node.defaultChild as CfnElement)
    ]?.Properties.PolicyDocument as { Statement: Statement[] }
  ).Statement.filter((st) => ![st.Action].flat().every((a) => a.startsWith('logs:')));
const actionsOf = (group: FunctionName) =>
  [...new Set(policyStatements(group).flatMap((st) => [st.Action].flat()))].sort();
/** Renders Fn::Join / Ref / Fn::GetAtt as text: `arn:${AWS::Partition}:ssm:...`. */
const render = (v: unknown): string => {
  if (typeof v === 'string') return v;
  const o = v as Record<string, unknown>;
  if ('Ref' in o) return `\${${String(o.Ref)}}`;
  if ('Fn::GetAtt' in o) return `\${${(o['Fn::GetAtt'] as string[]).join('.')}}`;
  if ('Fn::Join' in o) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  return JSON.stringify(v);
};
/** The resources a function may call `action` on. */
const grants = (group: FunctionName, action: string) =>
  policyStatements(group)
    .filter((st) => [st.Action].flat().includes(action))
    .flatMap((st) => [st.Resource].flat().map(render));

beforeAll(() => {
  // Prepare: the real app, with real esbuild bundling and cdk-nag registered, synthesised once.
  // Inside the repository, so the bundles' external @aws-sdk imports resolve from node_modules as on Lambda.
  const cache = join(PROJECT_ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  outdir = mkdtempSync(join(cache, 'cdk-stack-test-'));
  const app = new App({ context, outdir });
  stack = createControlPlane(app);
  // Act: cdk-nag runs as a validation plugin here; unacknowledged findings throw.
  assembly = app.synth();
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, Resource>;
}, 120_000);

describe('ControlPlaneStack', () => {
  it('creates every app schedule in the group, delivering its payload to the events queue', () => {
    for (const spec of APP_SCHEDULES) {
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        Name: spec.name,
        GroupName: 'fleet',
        ScheduleExpression: spec.expression,
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: Match.objectLike({ Input: spec.payload }),
      });
    }
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged', () => {
    const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
      pluginReports: { pluginName: string; violations: { ruleName: string; severity?: string }[] }[];
    };
    const open = report.pluginReports.flatMap((r) =>
      r.violations.map((v) => `${r.pluginName}: ${v.ruleName} (${v.severity})`),
    );
    expect(open).toEqual([]);
  });

  it('builds the table from TABLE_KEYS: keys, GSIs, TTL, PITR, SSE, on demand, retained', () => {
    const keys = (pk: string, sk: string) => [
      { AttributeName: pk, KeyType: 'HASH' },
      { AttributeName: sk, KeyType: 'RANGE' },
    ];
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        KeySchema: keys(TABLE_KEYS.partitionKey, TABLE_KEYS.sortKey),
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        GlobalSecondaryIndexes: TABLE_KEYS.indexes.map((index) =>
          Match.objectLike({ IndexName: index.name, KeySchema: keys(index.partitionKey, index.sortKey) }),
        ),
      }),
    });
  });

  it('has one API route per entry of the route table, plus $default', () => {
    const routeKeys = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      // The WebSocket API's $connect/$disconnect are asserted in their own describe below.
      .filter(
        (r) =>
          !JSON.stringify(r.Properties.ApiId).includes(
            logicalId(stack.webSocket.api.node.defaultChild as CfnElement),
          ),
      )
      .map((r) => r.Properties.RouteKey);
    const expected = new Set(routes.map(routeKeyOf));
    expect(routeKeys.sort()).toEqual([...expected, '$default'].sort());
  });

  it('gives API Gateway route paths without a trailing slash', () => {
    expect(apiGatewayPath('/api/nodes/')).toBe('/api/nodes');
    expect(apiGatewayPath('/jobs/{job_id}')).toBe('/jobs/{job_id}');
    expect(apiGatewayPath('/')).toBe('/');
  });

  it("points each route at its group's function and $default at the system function", () => {
    const targetFunction = (routeKey: string) => {
      const route = Object.values(resources).find(
        (r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties.RouteKey === routeKey,
      );
      const target = route?.Properties.Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
      const integration = resources[target['Fn::Join'][1][1].Ref];
      return (integration?.Properties.IntegrationUri as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    };
    for (const route of routes) expect(targetFunction(routeKeyOf(route))).toBe(functionId(route.group));
    expect(targetFunction('$default')).toBe(functionId('system'));
  });

  it('routes in each bundled asset exactly the routes API Gateway integrates with its function', async () => {
    // Prepare: what the template sends where (route key → function logical id), HTTP API only.
    const wsApi = logicalId(stack.webSocket.api.node.defaultChild as CfnElement);
    const integratedWith = new Map<string, string>();
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::ApiGatewayV2::Route' || JSON.stringify(r.Properties.ApiId).includes(wsApi))
        continue;
      const target = r.Properties.Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
      const uri = resources[target['Fn::Join'][1][1].Ref]?.Properties.IntegrationUri as {
        'Fn::GetAtt': [string];
      };
      integratedWith.set(r.Properties.RouteKey as string, uri['Fn::GetAtt'][0]);
    }
    const keysOf = (rs: readonly { method: string; path: string }[]) =>
      new Set(rs.map((r) => routeKeyOf({ method: r.method as 'GET', path: r.path })));

    for (const group of ROUTE_GROUPS) {
      // Act: load the asset that ships (not the sources) and ask its router what it serves.
      const fn = resources[functionId(group)];
      const asset = join(assembly.directory, fn?.Metadata?.['aws:asset:path'] as string, 'index.mjs');
      const bundle = (await import(pathToFileURL(asset).href)) as { group: RouteGroupDef; handler: unknown };
      const served = keysOf(await bundle.group.served());

      // Assert: every key sent to this function is routed by its bundle...
      expect(bundle.group.name).toBe(group);
      expect(typeof bundle.handler).toBe('function');
      for (const [key, target] of integratedWith) {
        if (target === functionId(group) && key !== '$default')
          expect(served.has(key), `${key} in ${group}`).toBe(true);
      }
      // ...and no bundle routes a key the template sends elsewhere, but the `$default` target's,
      // which serves the whole table (paths with a trailing slash or a raw `/` in an id reach it).
      if (group === 'system') expect([...served].sort()).toEqual([...keysOf(routes)].sort());
      else
        for (const key of served)
          expect(integratedWith.get(key), `${key} served by ${group}`).toBe(functionId(group));
    }
  }, 60_000);

  it('runs every function on nodejs24.x, arm64, with its own log group', () => {
    for (const group of [...ROUTE_GROUPS, 'events'] as const) {
      const fn = resources[functionId(group)];
      expect(fn?.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: expect.anything() },
      });
    }
    expect(resources[functionId('orchestrator')]?.Properties.Timeout).toBe(29);
  });

  it("logs JSON, without Lambda's START/REPORT lines, the application's from INFO up", () => {
    for (const group of [...ROUTE_GROUPS, 'events'] as const) {
      expect(resources[functionId(group)]?.Properties.LoggingConfig).toMatchObject({
        LogFormat: 'JSON',
        SystemLogLevel: 'WARN',
        ApplicationLogLevel: 'INFO',
      });
    }
  });

  it('ships the docs assets inside the system bundle', () => {
    const system = resources[functionId('system')];
    expect(system?.Properties.Environment).toMatchObject({
      Variables: { DOCS_ASSETS_DIR: '/var/task/docs-assets' },
    });
    const assetDir = join(assembly.directory, system?.Metadata?.['aws:asset:path'] as string);
    expect(existsSync(join(assetDir, 'index.mjs'))).toBe(true);
    for (const name of Object.keys(DOCS_ASSETS))
      expect(existsSync(join(assetDir, DOCS_ASSETS_SUBDIR, name))).toBe(true);
  });

  it('gives the events queue an encrypted, TLS-only dead-letter queue after 5 receives', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'fleet-events',
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'fleet-events-dlq',
      SqsManagedSseEnabled: true,
    });
    template.resourcePropertiesCountIs(
      'AWS::SQS::QueuePolicy',
      {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      },
      2,
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('events') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('blocks public access to the buckets and logs artifact access', () => {
    const blocked = {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    };
    template.resourcePropertiesCountIs('AWS::S3::Bucket', { PublicAccessBlockConfiguration: blocked }, 3);
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'artifacts/' }),
    });
  });

  it('creates the schedule group and a role only Scheduler can assume to send to the events queue', () => {
    template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'fleet' });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: Match.anyValue(),
          }),
        ],
      },
    });
  });

  it('scopes runtime queue and schedule grants to the deployment prefix and group', () => {
    const statements = (group: FunctionName) => JSON.stringify(policyStatements(group));
    expect(statements('agent')).toContain(':fleet-node-*');
    expect(statements('training')).toContain(':schedule/fleet/*');
    expect(statements('training')).toContain('"iam:PassedToService":"scheduler.amazonaws.com"');
    for (const group of FUNCTIONS)
      expect(statements(group)).not.toMatch(/"(sqs|scheduler|s3|dynamodb|ssm|bedrock):\*"/);
  });
});

describe('ControlPlaneStack observability', () => {
  it('traces every function with X-Ray, granted only the two actions the daemon calls', () => {
    for (const group of FUNCTIONS) {
      const fn = resources[functionId(group)]!;
      expect(fn.Properties['TracingConfig'], group).toEqual({ Mode: 'Active' });
      expect(grants(group, 'xray:PutTraceSegments'), group).toEqual(['*']);
      expect(grants(group, 'xray:PutTelemetryRecords'), group).toEqual(['*']);
      expect(
        actionsOf(group).filter((a) => a.startsWith('xray:')),
        group,
      ).toEqual(TRACE);
    }
  });

  it('alarms on errors and throttles of every function, and has the fleet dashboard', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[];
    for (const metric of ['Errors', 'Throttles'])
      expect(alarms.filter((a) => a.Properties['MetricName'] === metric)).toHaveLength(FUNCTIONS.length);
    for (const metric of [
      'NodesOffline',
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
    ])
      expect(
        alarms.filter((a) => a.Properties['MetricName'] === metric),
        metric,
      ).toHaveLength(1);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    // No topic unless alarmTopicArn or alarmEmail is set.
    template.resourceCountIs('AWS::SNS::Topic', 0);
  });

  it('flushes the stored counters at most every 10 s per function instance', () => {
    for (const group of FUNCTIONS) {
      const env = (
        resources[functionId(group)]!.Properties['Environment'] as { Variables: Record<string, unknown> }
      ).Variables;
      expect(env['METRICS_FLUSH_SECONDS'], group).toBe('10');
    }
  });
});

describe('ControlPlaneStack least privilege', () => {
  // The actions each role grants (its log group's aside), as read from the template: a change here
  // is a change of what a function may do on AWS, to be reviewed with its code paths.
  const EXPECTED: Record<FunctionName, string[]> = {
    system: [
      'bedrock:InvokeModel',
      'dynamodb:DeleteItem',
      'dynamodb:DescribeTable',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'iam:PassRole',
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'scheduler:CreateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetScheduleGroup',
      'scheduler:UpdateSchedule',
      'sqs:CreateQueue',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ListQueues',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'sqs:SetQueueAttributes',
      'ssm:DeleteParameter',
      'ssm:GetParameter',
      'ssm:PutParameter',
    ],
    agent: [
      ...ITEMS,
      'sts:AssumeRole',
      // Task files, and training checkpoints (manifests, chunks listed, presigned, dropped).
      ...ARTIFACTS,
      'sqs:CreateQueue',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'sqs:SetQueueAttributes',
      'ssm:DeleteParameter',
      'ssm:GetParameter',
    ],
    orchestrator: [
      ...ITEMS,
      'dynamodb:DescribeTable',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
      'ssm:GetParameter',
    ],
    fleet: [
      ...ITEMS,
      'bedrock:InvokeModel',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
      'ssm:DeleteParameter',
      'ssm:GetParameter',
      'ssm:PutParameter',
    ],
    cluster: [...ITEMS, ...ARTIFACTS, 'sqs:GetQueueUrl', 'sqs:SendMessage', 'ssm:GetParameter'],
    vision: [...ITEMS, ...ARTIFACTS, 'sqs:GetQueueUrl', 'sqs:SendMessage', 'ssm:GetParameter'],
    training: [
      ...ITEMS,
      // Checkpoints listed and cleared.
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      'iam:PassRole',
      'scheduler:CreateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetScheduleGroup',
      'scheduler:UpdateSchedule',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
      'ssm:GetParameter',
    ],
    novita: [...ITEMS, 'sqs:GetQueueUrl', 'sqs:SendMessage', 'ssm:GetParameter'],
    events: [
      ...ITEMS,
      ...ARTIFACTS,
      'dynamodb:DescribeTable',
      'execute-api:ManageConnections',
      'iam:PassRole',
      'scheduler:CreateSchedule',
      'scheduler:DeleteSchedule',
      'scheduler:GetSchedule',
      'scheduler:GetScheduleGroup',
      'scheduler:ListSchedules',
      'scheduler:UpdateSchedule',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ListQueues',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'ssm:GetParameter',
      'ssm:PutParameter',
    ],
    websocket: [...ITEMS, 'sqs:GetQueueUrl', 'sqs:SendMessage', 'ssm:GetParameter'],
  };

  it('grants each function exactly the actions its code paths call', () => {
    for (const group of FUNCTIONS)
      expect({ group, actions: actionsOf(group) }).toEqual({
        group,
        actions: [...EXPECTED[group], ...TRACE].sort(),
      });
  });

  it('lets only the fleet function write or delete vault parameters, and call Bedrock', () => {
    for (const group of FUNCTIONS) {
      const vault = grants(group, 'ssm:PutParameter').some((r) => r.endsWith(':parameter/fleet/vault/*'));
      expect({ group, vault }).toEqual({ group, vault: group === 'fleet' || group === 'system' });
      expect({ group, bedrock: actionsOf(group).includes('bedrock:InvokeModel') }).toEqual({
        group,
        bedrock: group === 'fleet' || group === 'system',
      });
    }
    expect(grants('fleet', 'ssm:DeleteParameter')).toEqual([
      expect.stringMatching(/:parameter\/fleet\/install\/\*$/),
      expect.stringMatching(/:parameter\/fleet\/vault\/\*$/),
    ]);
  });

  it('lets the agent function read vault logins for installs, and delete only inline install logins', () => {
    expect(grants('agent', 'ssm:GetParameter')).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/:parameter\/fleet\/vault\/\*$/),
        expect.stringMatching(/:parameter\/fleet\/install\/\*$/),
      ]),
    );
    expect(grants('agent', 'ssm:DeleteParameter')).toEqual([
      expect.stringMatching(/:parameter\/fleet\/install\/\*$/),
    ]);
    expect(grants('agent', 'ssm:PutParameter')).toEqual([]);
  });

  it('lets only the events worker create the webhook signing key, at its own name and nowhere else', () => {
    expect(grants('events', 'ssm:PutParameter')).toEqual([
      expect.stringMatching(/:parameter\/fleet\/webhook-signing-key$/),
    ]);
    for (const group of FUNCTIONS.filter((g) => g !== 'events' && g !== 'system'))
      expect({
        group,
        put: grants(group, 'ssm:PutParameter').some((r) => r.includes('webhook-signing-key')),
      }).toEqual({ group, put: false });
  });

  it('lets only the agent function create node queues, and nobody delete a queue or list parameters', () => {
    for (const group of FUNCTIONS) {
      expect({ group, create: actionsOf(group).includes('sqs:CreateQueue') }).toEqual({
        group,
        create: group === 'agent' || group === 'system',
      });
      expect(actionsOf(group)).not.toContain('sqs:DeleteQueue');
      expect(actionsOf(group)).not.toContain('ssm:GetParametersByPath');
    }
    expect(grants('agent', 'sqs:CreateQueue')).toEqual([expect.stringMatching(/:fleet-node-\*$/)]);
  });

  it('reads only named parameters: the API key for user routes and $connect, the Novita key, the registry auth, the scrape token', () => {
    expect(grants('websocket', 'ssm:GetParameter')).toEqual([
      expect.stringMatching(/:parameter\/fleet\/api-key$/),
    ]);
    expect(grants('novita', 'ssm:GetParameter').sort()).toEqual([
      expect.stringMatching(/:parameter\/fleet\/api-key$/),
      expect.stringMatching(/:parameter\/fleet\/novita-api-key$/),
    ]);
    expect(grants('system', 'ssm:GetParameter')).toContainEqual(
      expect.stringMatching(/:parameter\/fleet\/metrics-scrape-token$/),
    );
    expect(grants('fleet', 'ssm:GetParameter')).not.toContainEqual(
      expect.stringMatching(/metrics-scrape-token$/),
    );
    expect(grants('events', 'ssm:GetParameter').sort()).toEqual([
      expect.stringMatching(/:parameter\/fleet\/novita-api-key$/),
      expect.stringMatching(/:parameter\/fleet\/webhook-signing-key$/),
    ]);
  });

  it('gives the system function ($default: the whole table) the union of the HTTP groups, but not the agent role', () => {
    // The agent role trusts the agent function's role alone: credentials are vended at /agent/credentials only.
    const union = new Set(
      ROUTE_GROUPS.filter((g) => g !== 'system')
        .flatMap((g) => actionsOf(g))
        .filter((a) => a !== 'sts:AssumeRole'),
    );
    expect(actionsOf('system')).toEqual(
      [
        ...new Set([
          ...union,
          'dynamodb:DescribeTable',
          'sqs:ListQueues',
          's3:ListBucket',
          'scheduler:GetScheduleGroup',
        ]),
      ].sort(),
    );
  });
});

describe('ControlPlaneStack WebSocket API', () => {
  const policyOf = (group: keyof ControlPlaneStack['functions']) =>
    JSON.stringify(
      resources[
        logicalId(stack.functions[group].role.node.findChild('DefaultPolicy').node.defaultChild as CfnElement)
      ],
    );

  it('has a WebSocket API whose $connect and $disconnect go to the websocket function', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET' });
    for (const routeKey of ['$connect', '$disconnect'])
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: routeKey });
    const integrations = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::ApiGatewayV2::Integration' &&
        JSON.stringify(r.Properties).includes(functionId('websocket')),
    );
    expect(integrations).toHaveLength(2);
    expect(resources[functionId('websocket')]?.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
    });
  });

  it('deploys the live stage with access logs (no query string: ?token= stays out) and throttling', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'live',
      AutoDeploy: true,
      AccessLogSettings: Match.objectLike({ Format: Match.not(Match.stringLikeRegexp('querystring')) }),
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 }),
    });
  });

  it("lets only the events worker manage connections, on the stage's @connections only", () => {
    const events = policyOf('events');
    expect(events).toContain('"Action":"execute-api:ManageConnections"');
    expect(events).toContain('/live/*/@connections/*');
    for (const group of [...ROUTE_GROUPS, 'websocket'] as const)
      expect(policyOf(group)).not.toContain('execute-api:');
    const env = (
      resources[functionId('events')]?.Properties.Environment as { Variables: Record<string, unknown> }
    ).Variables;
    expect(JSON.stringify(env.WS_CALLBACK_URL)).toContain('/live');
  });

  it('outputs the wss URL', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.WebSocketUrl?.Value)).toContain('wss://');
  });

  it('creates one every-minute schedule: the sweep, the placement safety net and the live push in one firing', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      Name: 'minute',
      ScheduleExpression: 'rate(1 minute)',
      Target: Match.objectLike({ Input: JSON.stringify({ type: 'minute.tick' }) }),
    });
    const everyMinute = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Scheduler::Schedule' && r.Properties.ScheduleExpression === 'rate(1 minute)',
    );
    expect(everyMinute).toHaveLength(1);
  });

  it('fires the minute schedule into the events function itself, with a retry policy and the dead-letter queue', () => {
    const events = functionId('events');
    const [schedule] = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Scheduler::Schedule' && r.Properties.Name === 'minute',
    );
    const target = schedule!.Properties.Target as Record<string, unknown>;
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [events, 'Arn'] });
    expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 2 });
    const dlq = Object.entries(resources).find(
      ([, r]) => r.Type === 'AWS::SQS::Queue' && !r.Properties.RedrivePolicy,
    )![0];
    expect(target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } });
    // The role Scheduler assumes may invoke that one function, and nothing else of Lambda.
    const roleId = JSON.stringify(target.RoleArn).match(/"([A-Za-z0-9]+)","Arn"/)![1]!;
    const invokes = Object.values(resources)
      .filter(
        (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleId}"`),
      )
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
      .filter((st) => [st.Action].flat().some((a) => a.startsWith('lambda:')));
    expect(invokes).toEqual([
      expect.objectContaining({
        Action: 'lambda:InvokeFunction',
        Resource: { 'Fn::GetAtt': [events, 'Arn'] },
      }),
    ]);
    // What the function then fails: two retries, then the record of the firing in the dead-letter queue.
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: events },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [dlq, 'Arn'] } } },
    });
  });
});

describe('ControlPlaneStack agent identity', () => {
  const agentRoleId = () => {
    const ids = Object.entries(resources)
      .filter(
        ([, r]) => r.Type === 'AWS::IAM::Role' && String(r.Properties.Description).startsWith("Node agents'"),
      )
      .map(([id]) => id);
    expect(ids).toHaveLength(1);
    return ids[0]!;
  };
  const roleOf = (group: keyof ControlPlaneStack['functions']) =>
    logicalId(stack.functions[group].role.node.defaultChild as CfnElement);
  /** Statements of the policies attached to a role, by the role's logical id. */
  const statementsOf = (roleId: string) =>
    Object.values(resources)
      .filter(
        (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleId}"`),
      )
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);

  it("creates an agent role only the agent function's role may assume, reaching the node queues only, for at most 1 h", () => {
    const role = resources[agentRoleId()]!;
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'sts:AssumeRole',
          Principal: { AWS: { 'Fn::GetAtt': [roleOf('agent'), 'Arn'] } },
        },
      ],
    });
    expect(role.Properties.MaxSessionDuration).toBe(3600);
    expect(role.Properties.Policies).toEqual([
      {
        PolicyName: 'NodeQueues',
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              // CDK sorts the actions.
              Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage'],
              Resource: {
                'Fn::Join': [
                  '',
                  [
                    'arn:',
                    { Ref: 'AWS::Partition' },
                    ':sqs:',
                    { Ref: 'AWS::Region' },
                    ':',
                    { Ref: 'AWS::AccountId' },
                    ':fleet-node-*',
                  ],
                ],
              },
            },
          ],
        },
      },
    ]);
  });

  it('lets the agent function, and no other, assume the agent role, and gives it the role ARN', () => {
    const assumes = (group: keyof ControlPlaneStack['functions']) =>
      statementsOf(roleOf(group)).filter((s) => s.Action === 'sts:AssumeRole');
    expect(assumes('agent')).toEqual([
      { Effect: 'Allow', Action: 'sts:AssumeRole', Resource: { 'Fn::GetAtt': [agentRoleId(), 'Arn'] } },
    ]);
    for (const group of Object.keys(stack.functions) as (keyof ControlPlaneStack['functions'])[]) {
      if (group !== 'agent') expect(assumes(group)).toEqual([]);
    }
    const env = (group: keyof ControlPlaneStack['functions']) =>
      (resources[functionId(group)]?.Properties.Environment as { Variables: Record<string, unknown> })
        .Variables;
    expect(env('agent').AGENT_ROLE_ARN).toEqual({ 'Fn::GetAtt': [agentRoleId(), 'Arn'] });
    expect(env('fleet').AGENT_ROLE_ARN).toBeUndefined();
  });
});
