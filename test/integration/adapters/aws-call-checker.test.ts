import { createServer, Agent as HttpAgent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import {
  BatchGetItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListGlobalTablesCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateScheduleGroupCommand,
  DeleteScheduleGroupCommand,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import {
  DeleteQueueCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DeleteParametersCommand, GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore, ensureTable } from '../../../functions/adapters/dynamo-store.js';
import { EventBridgeScheduler } from '../../../functions/adapters/eventbridge-scheduler.js';
import { S3Blobs } from '../../../functions/adapters/s3-blobs.js';
import { StsNodeCredentials } from '../../../functions/adapters/sts-node-credentials.js';
import { SqsQueue } from '../../../functions/adapters/sqs-queue.js';
import { SsmSecrets } from '../../../functions/adapters/ssm-secrets.js';
import type { AppContext } from '../../../functions/core/context.js';
import { EVENTS_QUEUE } from '../../../functions/core/events.js';
import { SIGNING_SECRET, resetSigningKeyCache, signingKey } from '../../../functions/training/notify.js';
import {
  connectionArn,
  formatDenials,
  startAwsCallChecker,
  type AwsCallChecker,
  type CheckedCall,
} from '../../../local/stack/iam/checker.js';
import type { CfnTemplate, Resolve } from '../../../local/stack/iam/roles.js';
import { awsEndpoint, describeWithMoto, uniqueName } from '../../harness/services.js';
import { synthTemplate, templateResolver } from '../../harness/synth.js';

const region = process.env.AWS_REGION ?? 'us-east-1';
/** moto's account: the ARNs it hands out (queue ARNs) carry it. */
const account = '123456789012';
const admin = { accessKeyId: 'test', secretAccessKey: 'test' };

type Fn =
  | 'System'
  | 'Agent'
  | 'Orchestrator'
  | 'Fleet'
  | 'Cluster'
  | 'Vision'
  | 'Training'
  | 'Novita'
  | 'Events'
  | 'WebSocket';

describeWithMoto('AWS call checker: the calls of the adapters, checked against the synthesized roles', () => {
  const id = uniqueName('iam');
  const names = { table: id, bucket: id, region, account, sqsEndpoint: '' };
  let template: CfnTemplate;
  let resolve: Resolve;
  let checker: AwsCallChecker;
  let upstream: string;

  /** The logical id of a function of the template: `FleetFunction1A2B3C4D`. */
  const fnId = (fn: Fn) => {
    const found = Object.entries(template.Resources).find(
      ([k, r]) => r.Type === 'AWS::Lambda::Function' && new RegExp(`^${fn}Function[0-9A-F]{8}$`).test(k),
    );
    if (!found) throw new Error(`no ${fn} function in the template`);
    return found[0];
  };
  /** Settings a function gets, pointed at the checker with its own credentials. */
  const as = (fn: Fn, c: AwsCallChecker = checker) => {
    const credentials = c.credentialsFor(fnId(fn));
    return {
      credentials,
      config: {
        AWS_ENDPOINT_URL: c.endpoint,
        AWS_REGION: region,
        QUEUE_PREFIX: `${id}-`,
        SCHEDULE_GROUP: id,
        SCHEDULE_TARGET_ARN: resolve({
          'Fn::GetAtt': [logicalIdOf('AWS::SQS::Queue', 'MessagingEvents'), 'Arn'],
        }) as string,
        SCHEDULE_ROLE_ARN: resolve({
          'Fn::GetAtt': [logicalIdOf('AWS::IAM::Role', 'MessagingSchedulerRole'), 'Arn'],
        }) as string,
        ARTIFACTS_BUCKET: id,
        SECRETS_PREFIX: `/${id}/`,
      },
      client: { region, endpoint: c.endpoint, credentials },
    };
  };
  const logicalIdOf = (type: string, prefix: string) =>
    Object.entries(template.Resources).find(([k, r]) => r.Type === type && k.startsWith(prefix))![0];
  const sqsClient = (fn: Fn) => new SQSClient(as(fn).client);
  const queueFor = (fn: Fn, c?: AwsCallChecker) =>
    new SqsQueue(as(fn, c).config, new SQSClient(as(fn, c).client));
  const secretsFor = (fn: Fn, c?: AwsCallChecker) =>
    new SsmSecrets(as(fn, c).config, new SSMClient(as(fn, c).client));
  const blobsFor = (fn: Fn) =>
    new S3Blobs(as(fn).config, new S3Client({ ...as(fn).client, forcePathStyle: true }));
  const schedulerFor = (fn: Fn) =>
    new EventBridgeScheduler(as(fn).config, new SchedulerClient(as(fn).client), sqsClient(fn));
  const storeFor = (fn: Fn) => new DynamoStore(new DynamoDBClient(as(fn).client), id);

  /** The calls made while `act` ran. */
  const during = async (act: () => Promise<unknown>): Promise<{ calls: CheckedCall[]; error?: Error }> => {
    const before = checker.calls().length;
    let error: Error | undefined;
    try {
      await act();
    } catch (e) {
      error = e as Error;
    }
    return { calls: checker.calls().slice(before), ...(error ? { error } : {}) };
  };
  const brief = (calls: CheckedCall[]) =>
    calls.map(
      (c) =>
        `${c.function.replace(/Function[0-9A-F]{8}$/, '')} ${c.operation} ${c.action} ${c.resource} ${c.allowed ? 'allow' : 'DENY'}`,
    );
  const arn = {
    table: () => `arn:aws:dynamodb:${region}:${account}:table/${id}`,
    queue: (name: string) => `arn:aws:sqs:${region}:${account}:${id}-${name}`,
    parameter: (name: string) => `arn:aws:ssm:${region}:${account}:parameter/${id}/${name}`,
    schedule: (name: string) => `arn:aws:scheduler:${region}:${account}:schedule/${id}/${name}`,
  };

  beforeAll(async () => {
    upstream = awsEndpoint();
    names.sqsEndpoint = upstream;
    // The stack as `cdk synth` makes it, named for this suite (queue prefix, schedule group, SSM prefix).
    template = synthTemplate({ queuePrefix: `${id}-`, scheduleGroup: id, ssmPrefix: `/${id}/` });
    resolve = templateResolver(template, names);
    checker = await startAwsCallChecker({ upstream, template, resolve, region, account });
    // What the stack would have created, made directly on the emulator.
    const direct = { region, endpoint: upstream, credentials: admin };
    await ensureTable(new DynamoDBClient(direct), id);
    await new SqsQueue(
      { AWS_ENDPOINT_URL: upstream, AWS_REGION: region, QUEUE_PREFIX: `${id}-` },
      new SQSClient(direct),
    ).ensure({ name: EVENTS_QUEUE });
    await new S3Client({ ...direct, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: id }));
    await new SchedulerClient(direct).send(new CreateScheduleGroupCommand({ Name: id }));
  }, 90_000);

  afterAll(async () => {
    await checker?.stop();
    const direct = { region, endpoint: upstream, credentials: admin };
    const sqs = new SQSClient(direct);
    const queues = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: id }));
    for (const QueueUrl of queues.QueueUrls ?? []) await sqs.send(new DeleteQueueCommand({ QueueUrl }));
    await new DynamoDBClient(direct).send(new DeleteTableCommand({ TableName: id })).catch(() => undefined);
    await new SchedulerClient(direct)
      .send(new DeleteScheduleGroupCommand({ Name: id }))
      .catch(() => undefined);
    const s3 = new S3Client({ ...direct, forcePathStyle: true });
    const blobs = new S3Blobs({ AWS_ENDPOINT_URL: upstream, AWS_REGION: region, ARTIFACTS_BUCKET: id }, s3);
    for (const b of await blobs.list('')) await blobs.delete(b.key);
    await s3.send(new DeleteBucketCommand({ Bucket: id })).catch(() => undefined);
    const ssm = new SSMClient(direct);
    const params = await new SsmSecrets(
      { AWS_ENDPOINT_URL: upstream, AWS_REGION: region, SECRETS_PREFIX: `/${id}/` },
      ssm,
    ).list();
    if (params.length)
      await ssm.send(new DeleteParametersCommand({ Names: params.map((p) => `/${id}/${p}`) }));
  });

  describe('DynamoDB', () => {
    it('checks item calls on the table and a GSI query on the index ARN', async () => {
      const store = storeFor('Agent');
      const { calls, error } = await during(async () => {
        await store.put({ pk: 'N#1', sk: 'A', gsi1pk: 'G', gsi1sk: '1' });
        await store.get('N#1', 'A');
        await store.update('N#1', 'A', { set: { x: 1 } });
        await store.query('G', { index: 'gsi1' });
        await store.delete('N#1', 'A');
      });
      expect(error).toBeUndefined();
      expect(brief(calls)).toEqual([
        `Agent PutItem dynamodb:PutItem ${arn.table()} allow`,
        `Agent GetItem dynamodb:GetItem ${arn.table()} allow`,
        `Agent UpdateItem dynamodb:UpdateItem ${arn.table()} allow`,
        `Agent Query dynamodb:Query ${arn.table()}/index/gsi1 allow`,
        `Agent DeleteItem dynamodb:DeleteItem ${arn.table()} allow`,
      ]);
    });

    it('authorises a transaction item by item and a batch get per table; a denied one never reaches the table', async () => {
      const client = new DynamoDBClient(as('Agent').client);
      const item = (pk: string) => ({ pk: { S: pk }, sk: { S: 'T' } });
      const { calls, error } = await during(() =>
        client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              { Put: { TableName: id, Item: item('T#1') } },
              {
                ConditionCheck: {
                  TableName: id,
                  Key: item('T#2'),
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
            ],
          }),
        ),
      );
      // No role grants ConditionCheckItem: the transaction fails as AWS would fail it.
      expect(error?.name).toBe('AccessDeniedException');
      expect(brief(calls)).toEqual([
        `Agent TransactWriteItems dynamodb:PutItem ${arn.table()} allow`,
        `Agent TransactWriteItems dynamodb:ConditionCheckItem ${arn.table()} DENY`,
      ]);
      expect(await storeFor('Agent').get('T#1', 'T')).toBeUndefined();

      const batch = await during(() =>
        client.send(new BatchGetItemCommand({ RequestItems: { [id]: { Keys: [item('T#1')] } } })),
      );
      expect(brief(batch.calls)).toEqual([`Agent BatchGetItem dynamodb:BatchGetItem ${arn.table()} DENY`]);
      expect(batch.error?.name).toBe('AccessDeniedException');
    });

    it('lets the functions with a health probe describe the table, and no other', async () => {
      const describeTable = (fn: Fn) =>
        during(() => new DynamoDBClient(as(fn).client).send(new DescribeTableCommand({ TableName: id })));
      expect(brief((await describeTable('System')).calls)).toEqual([
        `System DescribeTable dynamodb:DescribeTable ${arn.table()} allow`,
      ]);
      expect(brief((await describeTable('Orchestrator')).calls)).toEqual([
        `Orchestrator DescribeTable dynamodb:DescribeTable ${arn.table()} allow`,
      ]);
      const vision = await describeTable('Vision');
      expect(brief(vision.calls)).toEqual([
        `Vision DescribeTable dynamodb:DescribeTable ${arn.table()} DENY`,
      ]);
      expect(vision.error?.name).toBe('AccessDeniedException');
    });
  });

  describe('SQS', () => {
    it('lets the agent function create a node queue and its dead-letter queue, and poll it', async () => {
      const queue = queueFor('Agent');
      const { calls, error } = await during(async () => {
        await queue.ensure({ name: 'node-a', visibilityTimeoutSeconds: 60, maxReceiveCount: 3 });
        await queue.sendBatch('node-a', ['one', 'two']);
        const got = await queue.receive('node-a', { maxMessages: 2, waitSeconds: 0 });
        await queue.deleteBatch(
          'node-a',
          got.map((m) => m.receiptHandle),
        );
      });
      expect(error).toBeUndefined();
      const seen = new Set(brief(calls));
      expect(seen).toEqual(
        new Set([
          `Agent GetQueueUrl sqs:GetQueueUrl ${arn.queue('node-a-dlq')} allow`,
          `Agent CreateQueue sqs:CreateQueue ${arn.queue('node-a-dlq')} allow`,
          `Agent GetQueueAttributes sqs:GetQueueAttributes ${arn.queue('node-a-dlq')} allow`,
          `Agent GetQueueUrl sqs:GetQueueUrl ${arn.queue('node-a')} allow`,
          `Agent CreateQueue sqs:CreateQueue ${arn.queue('node-a')} allow`,
          // Batches are authorised as their single-message actions.
          `Agent SendMessageBatch sqs:SendMessage ${arn.queue('node-a')} allow`,
          `Agent ReceiveMessage sqs:ReceiveMessage ${arn.queue('node-a')} allow`,
          `Agent DeleteMessageBatch sqs:DeleteMessage ${arn.queue('node-a')} allow`,
        ]),
      );
    });

    it('lets the fleet function command a node but not create its queue; the denied queue does not exist', async () => {
      const sent = await during(() => queueFor('Fleet').send('node-a', '{"type":"container.start"}'));
      expect(sent.error).toBeUndefined();
      expect(brief(sent.calls)).toContain(`Fleet SendMessage sqs:SendMessage ${arn.queue('node-a')} allow`);

      const created = await during(() => queueFor('Fleet').ensure({ name: 'node-b' }));
      expect(created.error?.name).toBe('AccessDenied');
      expect(checker.denials()).toContainEqual(
        expect.objectContaining({
          function: fnId('Fleet'),
          action: 'sqs:CreateQueue',
          resource: arn.queue('node-b-dlq'),
          allowed: false,
        }),
      );
      const direct = new SQSClient({ region, endpoint: upstream, credentials: admin });
      await expect(
        direct.send(new GetQueueUrlCommand({ QueueName: `${id}-node-b-dlq` })),
      ).rejects.toMatchObject({
        name: expect.stringMatching(/QueueDoesNotExist|NonExistentQueue/),
      });
    });

    it('lets every function emit to the events queue, and the Novita function command no node', async () => {
      for (const fn of ['WebSocket', 'Novita', 'Training'] as const) {
        const { calls, error } = await during(() => queueFor(fn).send(EVENTS_QUEUE, '{"type":"test"}'));
        expect({ fn, error }).toEqual({ fn, error: undefined });
        expect(brief(calls)).toContain(`${fn} SendMessage sqs:SendMessage ${arn.queue(EVENTS_QUEUE)} allow`);
      }
      const novita = await during(() => queueFor('Novita').send('node-a', '{}'));
      expect(brief(novita.calls)).toEqual([`Novita GetQueueUrl sqs:GetQueueUrl ${arn.queue('node-a')} DENY`]);
    });
  });

  describe('SSM', () => {
    it('lets only the fleet function write and delete vault credentials', async () => {
      const fleet = await during(async () => {
        await secretsFor('Fleet').put('vault/cred-1', 'pw');
        await secretsFor('Fleet').delete('vault/cred-1');
      });
      expect(fleet.error).toBeUndefined();
      expect(brief(fleet.calls)).toEqual([
        `Fleet PutParameter ssm:PutParameter ${arn.parameter('vault/cred-1')} allow`,
        `Fleet DeleteParameter ssm:DeleteParameter ${arn.parameter('vault/cred-1')} allow`,
      ]);
      const agent = await during(() => secretsFor('Agent').put('vault/cred-2', 'pw'));
      expect(agent.error?.name).toBe('AccessDeniedException');
      expect(brief(agent.calls)).toEqual([
        `Agent PutParameter ssm:PutParameter ${arn.parameter('vault/cred-2')} DENY`,
      ]);
    });

    it('reads named parameters only: one resource per name of GetParameters, the path of GetParametersByPath', async () => {
      const ws = await during(() => secretsFor('WebSocket').get('api-key'));
      expect(ws.error).toBeUndefined();
      expect(brief(ws.calls)).toEqual([
        `WebSocket GetParameter ssm:GetParameter ${arn.parameter('api-key')} allow`,
      ]);

      const client = new SSMClient(as('Novita').client);
      const many = await during(() =>
        client.send(
          new GetParametersCommand({
            Names: [`/${id}/api-key`, `/${id}/novita-api-key`, `/${id}/registry-auth`],
          }),
        ),
      );
      expect(brief(many.calls)).toEqual([
        `Novita GetParameters ssm:GetParameters ${arn.parameter('api-key')} DENY`,
        `Novita GetParameters ssm:GetParameters ${arn.parameter('novita-api-key')} DENY`,
        `Novita GetParameters ssm:GetParameters ${arn.parameter('registry-auth')} DENY`,
      ]);
      const listed = await during(() => secretsFor('System').list());
      expect(brief(listed.calls)).toEqual([
        `System GetParametersByPath ssm:GetParametersByPath arn:aws:ssm:${region}:${account}:parameter/${id}/ DENY`,
      ]);
    });
  });

  describe('the training webhook signing key', () => {
    /** The template as it was: the events worker could write parameters under vault/ only. */
    const before = (t: CfnTemplate): CfnTemplate => {
      const copy = structuredClone(t);
      const policy = Object.entries(copy.Resources).find(
        ([k, r]) => r.Type === 'AWS::IAM::Policy' && k.startsWith('EventsFunctionRoleDefaultPolicy'),
      )![1];
      const doc = policy.Properties!.PolicyDocument as {
        Statement: { Effect?: string; Action: string | string[]; Resource: unknown }[];
      };
      const ssmPath = [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':ssm:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        `:parameter/${id}`,
      ];
      doc.Statement = [
        ...doc.Statement.filter((s) => ![s.Action].flat().some((a) => a.startsWith('ssm:'))),
        {
          Effect: 'Allow',
          Action: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'],
          Resource: [{ 'Fn::Join': ['', ssmPath] }, { 'Fn::Join': ['', [...ssmPath, '/*']] }],
        },
        {
          Effect: 'Allow',
          Action: ['ssm:PutParameter', 'ssm:DeleteParameter'],
          Resource: { 'Fn::Join': ['', [...ssmPath, '/vault/*']] },
        },
      ];
      return copy;
    };
    const ctxOf = (secrets: SsmSecrets) => ({ secrets, now: Date.now }) as unknown as AppContext;

    it('is created by the events worker at its own name now, and would have been denied before', async () => {
      const old = await startAwsCallChecker({
        upstream,
        template: before(template),
        resolve,
        region,
        account,
      });
      try {
        const ctx = ctxOf(secretsFor('Events', old));
        await expect(signingKey(ctx)).rejects.toMatchObject({ name: 'AccessDeniedException' });
        expect(old.denials().map((d) => `${d.action} ${d.resource} ${d.reason}`)).toEqual([
          `ssm:PutParameter ${arn.parameter(SIGNING_SECRET)} no statement of ${logicalIdOf('AWS::IAM::Role', 'EventsFunctionRole')}'s policies allows it`,
        ]);
      } finally {
        await old.stop();
      }

      const ctx = ctxOf(secretsFor('Events'));
      const { calls, error } = await during(() => signingKey(ctx));
      resetSigningKeyCache(ctx);
      expect(error).toBeUndefined();
      expect(brief(calls)).toEqual([
        `Events GetParameter ssm:GetParameter ${arn.parameter(SIGNING_SECRET)} allow`,
        `Events PutParameter ssm:PutParameter ${arn.parameter(SIGNING_SECRET)} allow`,
        `Events GetParameter ssm:GetParameter ${arn.parameter(SIGNING_SECRET)} allow`,
      ]);
      expect(await signingKey(ctxOf(secretsFor('Events')))).toMatch(/^[0-9a-f]{64}$/);
      // The training function only emits the delivery; it may not mint the key.
      const training = await during(() => signingKey(ctxOf(secretsFor('Training'))));
      expect(training.error?.name).toBe('AccessDeniedException');
    });
  });

  describe('EventBridge Scheduler', () => {
    it('checks the group lookup, the schedule and the role it passes; deletes and lists', async () => {
      const spec = { name: 'job-j1', expression: 'at(2030-01-01T00:00:00)', payload: '{"type":"job.fire"}' };
      const training = await during(async () => {
        await schedulerFor('Training').upsert(spec);
        await schedulerFor('Training').upsert({ ...spec, expression: 'at(2031-01-01T00:00:00)' });
      });
      expect(training.error).toBeUndefined();
      const role = as('Training').config.SCHEDULE_ROLE_ARN;
      expect(brief(training.calls)).toEqual([
        `Training GetScheduleGroup scheduler:GetScheduleGroup arn:aws:scheduler:${region}:${account}:schedule-group/${id} allow`,
        `Training CreateSchedule scheduler:CreateSchedule ${arn.schedule('job-j1')} allow`,
        `Training CreateSchedule iam:PassRole ${role} allow`,
        `Training GetScheduleGroup scheduler:GetScheduleGroup arn:aws:scheduler:${region}:${account}:schedule-group/${id} allow`,
        `Training CreateSchedule scheduler:CreateSchedule ${arn.schedule('job-j1')} allow`,
        `Training CreateSchedule iam:PassRole ${role} allow`,
        `Training UpdateSchedule scheduler:UpdateSchedule ${arn.schedule('job-j1')} allow`,
        `Training UpdateSchedule iam:PassRole ${role} allow`,
      ]);

      const listed = await during(() => schedulerFor('Events').list('job-'));
      expect(listed.error).toBeUndefined();
      expect(brief(listed.calls)).toEqual([
        'Events ListSchedules scheduler:ListSchedules * allow',
        `Events GetSchedule scheduler:GetSchedule ${arn.schedule('job-j1')} allow`,
      ]);

      const agent = await during(() => schedulerFor('Agent').upsert({ ...spec, name: 'job-j2' }));
      expect(agent.error?.name).toBe('AccessDeniedException');
      expect(brief(agent.calls)[0]).toMatch(/^Agent GetScheduleGroup .* DENY$/);

      const deleted = await during(() => schedulerFor('Training').delete('job-j1'));
      expect(deleted.error).toBeUndefined();
      expect(brief(deleted.calls)).toEqual([
        `Training DeleteSchedule scheduler:DeleteSchedule ${arn.schedule('job-j1')} allow`,
      ]);
    });
  });

  describe('S3', () => {
    it('checks object calls path-style: HeadObject as GetObject, ListObjectsV2 as ListBucket with its prefix', async () => {
      const blobs = blobsFor('Cluster');
      const { calls, error } = await during(async () => {
        await blobs.put('outputs/a b.txt', new TextEncoder().encode('hi'), 'text/plain');
        expect(new TextDecoder().decode((await blobs.get('outputs/a b.txt'))?.body)).toBe('hi');
        expect((await blobs.list('outputs/')).map((b) => b.key)).toEqual(['outputs/a b.txt']);
        expect(await blobs.delete('outputs/a b.txt')).toBe(true);
      });
      expect(error).toBeUndefined();
      const object = `arn:aws:s3:::${id}/outputs/a b.txt`;
      expect(brief(calls)).toEqual([
        `Cluster PutObject s3:PutObject ${object} allow`,
        `Cluster GetObject s3:GetObject ${object} allow`,
        `Cluster ListObjectsV2 s3:ListBucket arn:aws:s3:::${id} allow`,
        `Cluster HeadObject s3:GetObject ${object} allow`,
        `Cluster DeleteObject s3:DeleteObject ${object} allow`,
      ]);
      const health = await during(() => blobsFor('System').ping());
      expect(brief(health.calls)).toEqual([`System HeadBucket s3:ListBucket arn:aws:s3:::${id} allow`]);
      const fleet = await during(() => blobsFor('Fleet').put('outputs/x', new Uint8Array([1])));
      expect(fleet.error?.name).toBe('AccessDenied');
      expect(brief(fleet.calls)).toEqual([`Fleet PutObject s3:PutObject arn:aws:s3:::${id}/outputs/x DENY`]);
    });

    it('reads the bucket from the host of a virtual-hosted request; a copy also reads its source; DeleteObjects per key', async () => {
      // bucket.localhost resolves to the checker on loopback.
      const lookup = ((_h: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) =>
        o?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) as never;
      const virtual = new S3Client({
        region,
        endpoint: checker.endpoint.replace('127.0.0.1', 'localhost'),
        credentials: as('Vision').credentials,
        requestHandler: new NodeHttpHandler({ httpAgent: new HttpAgent({ lookup }) }),
      });
      const { calls, error } = await during(async () => {
        await virtual.send(new PutObjectCommand({ Bucket: id, Key: 'loras/x.safetensors', Body: 'w' }));
        await virtual.send(new ListObjectsV2Command({ Bucket: id, Prefix: 'loras/' }));
      });
      expect(error).toBeUndefined();
      expect(brief(calls)).toEqual([
        `Vision PutObject s3:PutObject arn:aws:s3:::${id}/loras/x.safetensors allow`,
        `Vision ListObjectsV2 s3:ListBucket arn:aws:s3:::${id} allow`,
      ]);

      const path = new S3Client({ ...as('Vision').client, forcePathStyle: true });
      const copy = await during(() =>
        path.send(
          new CopyObjectCommand({ Bucket: id, Key: 'loras/y', CopySource: `${id}/loras/x.safetensors` }),
        ),
      );
      expect(copy.error).toBeUndefined();
      expect(brief(copy.calls)).toEqual([
        `Vision CopyObject s3:PutObject arn:aws:s3:::${id}/loras/y allow`,
        `Vision CopyObject s3:GetObject arn:aws:s3:::${id}/loras/x.safetensors allow`,
      ]);
      const removed = await during(() =>
        path.send(
          new DeleteObjectsCommand({
            Bucket: id,
            Delete: { Objects: [{ Key: 'loras/y' }, { Key: 'loras/x.safetensors' }] },
          }),
        ),
      );
      expect(removed.error).toBeUndefined();
      expect(brief(removed.calls)).toEqual([
        `Vision DeleteObjects s3:DeleteObject arn:aws:s3:::${id}/loras/y allow`,
        `Vision DeleteObjects s3:DeleteObject arn:aws:s3:::${id}/loras/x.safetensors allow`,
      ]);
    });
  });

  describe('STS, Bedrock and the Management API', () => {
    it("checks the agent function's AssumeRole of the agent role, then each node's vended session against the role and its session policy", async () => {
      const agentRole = resolve({
        'Fn::GetAtt': [logicalIdOf('AWS::IAM::Role', 'AgentIdentityRole'), 'Arn'],
      }) as string;
      const vend = (fn: Fn) =>
        new StsNodeCredentials(
          { ...as(fn).config, AGENT_ROLE_ARN: agentRole, AGENT_CREDENTIALS_SECONDS: 900 },
          new STSClient(as(fn).client),
        ).forQueue(`${upstream}/${account}/${id}-node-a`, 'node-a');
      const { calls, error } = await during(async () => {
        const vended = await vend('Agent');
        const { accessKeyId, secretAccessKey, sessionToken } = vended;
        const node = new SQSClient({
          region,
          endpoint: checker.endpoint,
          credentials: { accessKeyId, secretAccessKey, sessionToken },
        });
        const url = (name: string) => `${upstream}/${account}/${id}-${name}`;
        await node.send(new ReceiveMessageCommand({ QueueUrl: url('node-a'), WaitTimeSeconds: 0 }));
        await expect(
          node.send(new ReceiveMessageCommand({ QueueUrl: url('node-b'), WaitTimeSeconds: 0 })),
        ).rejects.toMatchObject({ name: 'AccessDenied' });
        await expect(
          node.send(new SendMessageCommand({ QueueUrl: url('node-a'), MessageBody: 'x' })),
        ).rejects.toMatchObject({ name: 'AccessDenied' });
        await expect(vend('Fleet')).rejects.toMatchObject({ name: 'AccessDenied' });
      });
      expect(error).toBeUndefined();
      const session = `${logicalIdOf('AWS::IAM::Role', 'AgentIdentityRole')} session node-a`;
      expect(brief(calls)).toEqual([
        `Agent AssumeRole sts:AssumeRole ${agentRole} allow`,
        `${session} ReceiveMessage sqs:ReceiveMessage ${arn.queue('node-a')} allow`,
        // The role reaches every node queue; the session policy narrows it to node A's.
        `${session} ReceiveMessage sqs:ReceiveMessage ${arn.queue('node-b')} DENY`,
        `${session} SendMessage sqs:SendMessage ${arn.queue('node-a')} DENY`,
        `Fleet AssumeRole sts:AssumeRole ${agentRole} DENY`,
      ]);
      expect(calls[2]?.reason).toMatch(/policies and the session policy allows it$/);
    });

    it('checks Bedrock calls against the fleet role and forwards them to the model double', async () => {
      const model: Server = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            output: { message: { role: 'assistant', content: [{ text: 'ok' }] } },
            stopReason: 'end_turn',
            usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
            metrics: { latencyMs: 1 },
          }),
        );
      });
      await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
      const modelUrl = `http://127.0.0.1:${(model.address() as AddressInfo).port}`;
      const c = await startAwsCallChecker({
        upstream,
        template,
        resolve,
        region,
        account,
        serviceUpstreams: { bedrock: modelUrl },
      });
      try {
        const converse = (fn: Fn) =>
          new BedrockRuntimeClient({ ...as(fn, c).client, maxAttempts: 1 }).send(
            new ConverseCommand({
              modelId: 'us.anthropic.claude-3-5-haiku-20241022-v1:0',
              messages: [{ role: 'user', content: [{ text: 'hi' }] }],
            }),
          );
        const reply = await converse('Fleet');
        expect(reply.output?.message?.content?.[0]).toEqual({ text: 'ok' });
        await expect(converse('Cluster')).rejects.toMatchObject({ name: 'AccessDeniedException' });
        const profile = `arn:aws:bedrock:${region}:${account}:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0`;
        expect(c.calls().map((x) => `${x.operation} ${x.action} ${x.resource} ${x.allowed}`)).toEqual([
          `Converse bedrock:InvokeModel ${profile} true`,
          `Converse bedrock:InvokeModel ${profile} false`,
        ]);
      } finally {
        await c.stop();
        await new Promise((r) => model.close(r));
      }
    });

    it('checks Management API calls the stack runtime serves: only the events worker may post to connections', async () => {
      const apiId = resolve({ Ref: logicalIdOf('AWS::ApiGatewayV2::Api', 'WebSocketApi') }) as string;
      const post = connectionArn({
        region,
        account,
        apiId,
        stage: 'live',
        method: 'POST',
        connectionId: 'abc=',
      });
      expect(await checker.checkManagementApiCall(fnId('Events'), post)).toMatchObject({
        action: 'execute-api:ManageConnections',
        resource: post,
        allowed: true,
      });
      expect(await checker.checkManagementApiCall(fnId('WebSocket'), post)).toMatchObject({ allowed: false });
      const otherStage = connectionArn({
        region,
        account,
        apiId,
        stage: 'dev',
        method: 'DELETE',
        connectionId: 'abc=',
      });
      expect(await checker.checkManagementApiCall(fnId('Events'), otherStage)).toMatchObject({
        allowed: false,
      });
    });
  });

  describe('what it cannot vouch for', () => {
    it('denies a call with an unknown key, and an operation it does not know, naming them', async () => {
      const stranger = new DynamoDBClient({ region, endpoint: checker.endpoint, credentials: admin });
      const unknownKey = await during(() => stranger.send(new DescribeTableCommand({ TableName: id })));
      expect(unknownKey.error?.name).toBe('AccessDeniedException');
      expect(unknownKey.calls).toEqual([
        expect.objectContaining({
          function: '(unknown caller)',
          allowed: false,
          reason: expect.stringContaining('access key test'),
        }),
      ]);

      const unknownOp = await during(() =>
        new DynamoDBClient(as('System').client).send(new ListGlobalTablesCommand({})),
      );
      expect(unknownOp.error?.name).toBe('AccessDeniedException');
      expect(unknownOp.calls).toEqual([
        expect.objectContaining({
          function: fnId('System'),
          allowed: false,
          reason: 'DynamoDB operation ListGlobalTables is not one the checker knows',
        }),
      ]);
    });

    it("forwards other callers' calls unchecked only when told to, and records them as unchecked", async () => {
      const c = await startAwsCallChecker({
        upstream,
        template,
        resolve,
        region,
        account,
        unknownKeys: 'forward',
      });
      try {
        const stranger = new DynamoDBClient({ region, endpoint: c.endpoint, credentials: admin });
        const out = await stranger.send(new DescribeTableCommand({ TableName: id }));
        expect(out.Table?.TableName).toBe(id);
        expect(c.denials()).toEqual([]);
        expect(c.unchecked()).toEqual([
          expect.objectContaining({
            function: '(not a function)',
            action: 'dynamodb:DescribeTable',
            resource: arn.table(),
            unchecked: true,
          }),
        ]);
      } finally {
        await c.stop();
      }
    });

    it('names function, action and resource of each denial for a failing suite', () => {
      const text = formatDenials(checker.denials());
      expect(text).toContain(
        `${fnId('Agent')}: ssm:PutParameter on ${arn.parameter('vault/cred-2')} (PutParameter): no statement of`,
      );
      expect(text.split('\n').length).toBe(checker.denials().length);
    });
  });
});
