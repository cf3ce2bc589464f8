/**
 * The synthesized control plane stack, run by `start:stack` on moto: the resources it creates from
 * the template, and a sweep in which every operation of /openapi.json is called through API
 * Gateway's route selection and answers from the function the template integrates it with.
 */
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TABLE_KEYS } from '../../../functions/core/table.js';
import { iamCall, xmlField } from '../../../functions/adapters/emulator-iam.js';
import { APP_SCHEDULES } from '../../../functions/schedules.js';
import { formatDenials } from '../../../local/stack/iam/checker.js';
import { startStack, type RunningStack } from '../../../local/stack/stack.js';
import { describeWithMoto } from '../../harness/services.js';

// The functions run with the template's environment plus these: no call may leave the machine
// (Bedrock, Novita), and no route waits for an agent that is not there.
const SWEEP_ENV = {
  LOG_LEVEL: 'SILENT',
  AI_ENABLED: 'false',
  NOVITA_BASE_URL: 'http://127.0.0.1:9/v1',
  COMMAND_WAIT_MS: '0',
};

type Operation = { method: string; path: string; hasBody: boolean };

describeWithMoto('start:stack: the synthesized control plane on moto', () => {
  let stack: RunningStack;
  const endpoint = () => ({
    endpoint: process.env.AWS_ENDPOINT_URL,
    region: process.env.AWS_REGION ?? 'us-east-1',
  });

  beforeAll(async () => {
    stack = await startStack({ port: 0, environment: SWEEP_ENV, maxConcurrency: 2 });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it("creates the template's table, queues, schedules, bucket, parameters and roles under its own prefix", async () => {
    const dynamo = new DynamoDBClient(endpoint());
    const TableName = stack.outputs.TableName!;
    expect(TableName.startsWith(stack.prefix)).toBe(true);
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
    ]);
    expect((Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort()).toEqual(
      TABLE_KEYS.indexes.map((i) => i.name).sort(),
    );
    const ttl = await dynamo.send(new DescribeTimeToLiveCommand({ TableName }));
    expect(ttl.TimeToLiveDescription).toMatchObject({
      AttributeName: TABLE_KEYS.ttlAttribute,
      TimeToLiveStatus: 'ENABLED',
    });
    dynamo.destroy();

    const sqs = new SQSClient(endpoint());
    const queues = Object.entries(stack.assembly.template.Resources).filter(
      ([, r]) => r.Type === 'AWS::SQS::Queue',
    );
    expect(queues).toHaveLength(2);
    const [eventsId] = queues.find(([, r]) => r.Properties?.RedrivePolicy)!;
    const [dlqId] = queues.find(([, r]) => !r.Properties?.RedrivePolicy)!;
    const events = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: stack.physical[eventsId]!.ref, AttributeNames: ['All'] }),
    );
    expect(JSON.parse(events.Attributes!.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: stack.physical[dlqId]!.arn,
      maxReceiveCount: 5,
    });
    expect(events.Attributes!.VisibilityTimeout).toBe('360');
    expect(stack.physical[eventsId]!.attributes!.QueueName).toBe(`${stack.prefix}-events`);
    sqs.destroy();

    const scheduler = new SchedulerClient(endpoint());
    const listed = await scheduler.send(new ListSchedulesCommand({ GroupName: stack.prefix }));
    expect((listed.Schedules ?? []).map((s) => s.Name).sort()).toEqual(
      APP_SCHEDULES.map((s) => s.name).sort(),
    );
    scheduler.destroy();

    const s3 = new S3Client({ ...endpoint(), forcePathStyle: true });
    const versioning = await s3.send(
      new GetBucketVersioningCommand({ Bucket: stack.outputs.ArtifactsBucket! }),
    );
    expect(versioning.Status).toBe('Enabled');
    s3.destroy();

    const ssm = new SSMClient(endpoint());
    const version = await ssm.send(new GetParameterCommand({ Name: `/${stack.prefix}/config/api-version` }));
    expect(version.Parameter?.Value).toMatch(/^\d+\.\d+\.\d+/);
    const key = await ssm.send(
      new GetParameterCommand({ Name: stack.outputs.ApiKeyParameter!, WithDecryption: true }),
    );
    expect(key.Parameter).toMatchObject({ Type: 'SecureString', Value: stack.apiKey });
    ssm.destroy();

    // Every role, with its trust and the policies the template attaches to it.
    const iam = { AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_REGION: endpoint().region };
    const roles = Object.entries(stack.assembly.template.Resources).filter(
      ([, r]) => r.Type === 'AWS::IAM::Role',
    );
    expect(roles.length).toBeGreaterThan(10);
    for (const [id] of roles) {
      const name = stack.physical[id]!.ref;
      expect(xmlField(await iamCall(iam, 'GetRole', { RoleName: name }), 'Arn')).toBe(
        stack.physical[id]!.arn,
      );
      const attached = Object.values(stack.assembly.template.Resources)
        .filter((r) => r.Type === 'AWS::IAM::Policy')
        .filter((r) => JSON.stringify(r.Properties?.Roles).includes(`"${id}"`))
        .map((r) => String(r.Properties?.PolicyName));
      const listed = await iamCall(iam, 'ListRolePolicies', { RoleName: name });
      for (const policy of attached) expect(listed).toContain(`<member>${policy}</member>`);
    }
  });

  it('refuses user routes without the API key, as the deployed functions do', async () => {
    const res = await fetch(`${stack.url}/api/nodes/`);
    expect(res.status).toBe(401);
    const health = await fetch(`${stack.url}/health`);
    expect(health.status).toBe(200);
  });

  it('answers every operation of /openapi.json from the function the template integrates it with', async () => {
    const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    const operations: Operation[] = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([m]) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map(([m, op]) => ({ method: m.toUpperCase(), path, hasBody: Boolean(op.requestBody) })),
    );
    expect(operations.length).toBeGreaterThan(100);

    // API Gateway's view: route key → function, `$default` for what no route names.
    const resources = stack.assembly.template.Resources;
    const integrationFunction = new Map<string, string>();
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::ApiGatewayV2::Integration') continue;
      const uri = JSON.stringify(r.Properties?.IntegrationUri);
      const fn = Object.keys(stack.functions).find((f) => uri.includes(`"${f}"`));
      if (fn) integrationFunction.set(id, fn);
    }
    const functionOfKey = new Map<string, string>();
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::ApiGatewayV2::Route') continue;
      const target = JSON.stringify(r.Properties?.Target);
      const integration = [...integrationFunction.keys()].find((id) => target.includes(`"${id}"`));
      if (integration)
        functionOfKey.set(String(r.Properties?.RouteKey), integrationFunction.get(integration)!);
    }
    const expected = (op: Operation) =>
      functionOfKey.get(`${op.method} ${op.path}`) ?? functionOfKey.get('$default')!;

    const failures: string[] = [];
    for (const op of operations) {
      const fn = stack.functions[expected(op)]!;
      const before = fn.invocations;
      const url = `${stack.url}${op.path.replace(/\{[^}]+\}/g, 'sweep-x')}`;
      const res = await fetch(url, {
        method: op.method,
        headers: {
          authorization: `Bearer ${stack.apiKey}`,
          ...(op.hasBody ? { 'content-type': 'application/json' } : {}),
        },
        ...(op.hasBody ? { body: '{}' } : {}),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      const routerMiss =
        (res.status === 404 && /"Not Found: /.test(text)) ||
        (res.status === 405 && /Method Not Allowed/.test(text));
      // A function's own 5xx with its documented error body (503: no registry configured) is an
      // answer; a 500, or API Gateway answering for a failed or late function, is not.
      const gatewayError = /^\{"message":"(Internal Server Error|Service Unavailable)"\}$/.test(text);
      if (res.status === 500 || gatewayError || routerMiss)
        failures.push(
          `${op.method} ${op.path} → ${res.status} ${text.slice(0, 200)} (function ${fn.options.logicalId})`,
        );
      else if (fn.invocations !== before + 1)
        failures.push(`${op.method} ${op.path} was not answered by ${fn.options.logicalId}`);
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it("makes only AWS calls the calling function's role allows (checked by the permission checker)", () => {
    const calls = stack.checker!.calls();
    // The sweep reached the table, the parameters and the health probes through the checker.
    for (const action of ['dynamodb:Query', 'ssm:GetParameter', 'dynamodb:DescribeTable', 'sqs:ListQueues'])
      expect(calls.map((c) => c.action)).toContain(action);
    expect(formatDenials(stack.checker!.denials())).toBe('');
  });
});
