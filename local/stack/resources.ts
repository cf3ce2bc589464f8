import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  DeleteScheduleGroupCommand,
  SchedulerClient,
  type CreateScheduleCommandInput,
} from '@aws-sdk/client-scheduler';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  DeleteParametersCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { ensureRole, iamCall } from '../../functions/adapters/emulator-iam.js';
import { DEFAULT_ACCOUNT, physicalNames } from './physical-names.js';
import { createResolver, type PhysicalResource, type Resolver, type Template } from './resolver.js';

export interface EmulatorTarget {
  endpoint: string;
  region: string;
}

export interface CreatedResources {
  physical: Record<string, PhysicalResource>;
  resolver: Resolver;
  /** Removes what was created, and what the functions created under the deployment's names. */
  remove(names: { queuePrefix?: string; scheduleGroups: string[]; ssmPrefix?: string }): Promise<void>;
}

/** Queues ordered so that a dead-letter queue exists before the queue that redrives to it. */
function queueOrder(template: Template): string[] {
  const queues = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::SQS::Queue');
  const refersTo = (value: unknown, id: string): boolean => JSON.stringify(value ?? null).includes(`"${id}"`);
  const ordered: string[] = [];
  const visit = (id: string, seen: Set<string>) => {
    if (ordered.includes(id) || seen.has(id)) return;
    seen.add(id);
    for (const [other] of queues)
      if (other !== id && refersTo(template.Resources[id]!.Properties, other)) visit(other, seen);
    ordered.push(id);
  };
  for (const [id] of queues) visit(id, new Set());
  return ordered;
}

const QUEUE_ATTRIBUTES = [
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'VisibilityTimeout',
  'FifoQueue',
  'ContentBasedDeduplication',
  'SqsManagedSseEnabled',
  'KmsMasterKeyId',
  'KmsDataKeyReusePeriodSeconds',
] as const;

/**
 * Creates, on the emulator, the resources of the template that hold state: the SQS queues (with
 * their redrive policies and attributes), DynamoDB tables (keys, GSIs, TTL), S3 buckets
 * (versioning), SSM parameters, schedule groups and schedules.
 */
export async function createResources(
  template: Template,
  prefix: string,
  target: EmulatorTarget,
  rewrite: (value: string) => string = (v) => v,
): Promise<CreatedResources> {
  const base = { region: target.region, endpoint: target.endpoint };
  const sqs = new SQSClient(base);
  const dynamo = new DynamoDBClient(base);
  const s3 = new S3Client({ ...base, forcePathStyle: true });
  const ssm = new SSMClient(base);
  const scheduler = new SchedulerClient(base);
  const created = {
    queues: [] as string[],
    tables: [] as string[],
    buckets: [] as string[],
    parameters: [] as string[],
    groups: [] as string[],
    roles: [] as { name: string; policies: string[] }[],
  };

  const of = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);

  // Queues first: the account the emulator answers for is read from the first queue's ARN.
  let accountId = DEFAULT_ACCOUNT;
  let physical = physicalNames(template, prefix, target.region, accountId);
  let resolver = createResolver(template, physical, { region: target.region, accountId });
  const queueArns: Record<string, string> = {};
  for (const id of queueOrder(template)) {
    const props = resolver.resolve<Record<string, unknown>>(template.Resources[id]!.Properties ?? {});
    const name = physical[id]!.attributes!.QueueName!;
    const attributes: Record<string, string> = {};
    for (const key of QUEUE_ATTRIBUTES) if (props[key] !== undefined) attributes[key] = String(props[key]);
    if (props.RedrivePolicy) attributes.RedrivePolicy = JSON.stringify(props.RedrivePolicy);
    if (props.RedriveAllowPolicy) attributes.RedriveAllowPolicy = JSON.stringify(props.RedriveAllowPolicy);
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    created.queues.push(QueueUrl!);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const arn = Attributes!.QueueArn!;
    queueArns[id] = arn;
    physical[id] = { ref: QueueUrl!, arn, attributes: { QueueName: name, QueueUrl: QueueUrl! } };
    if (created.queues.length === 1) {
      accountId = arn.split(':')[4] || DEFAULT_ACCOUNT;
      physical = {
        ...physicalNames(template, prefix, target.region, accountId),
        ...pick(physical, Object.keys(queueArns)),
      };
      resolver = createResolver(template, physical, { region: target.region, accountId });
    }
  }

  for (const [id, resource] of of('AWS::DynamoDB::Table')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    const input = {
      TableName: physical[id]!.ref,
      KeySchema: p.KeySchema,
      AttributeDefinitions: p.AttributeDefinitions,
      BillingMode: p.BillingMode ?? 'PROVISIONED',
      GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
      LocalSecondaryIndexes: p.LocalSecondaryIndexes,
      ProvisionedThroughput: p.ProvisionedThroughput,
      StreamSpecification: p.StreamSpecification,
    } as CreateTableCommandInput;
    const out = await dynamo.send(new CreateTableCommand(input));
    created.tables.push(input.TableName!);
    if (out.TableDescription?.TableArn) physical[id]!.arn = out.TableDescription.TableArn;
    const ttl = p.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
    if (ttl?.Enabled && ttl.AttributeName)
      await dynamo.send(
        new UpdateTimeToLiveCommand({
          TableName: input.TableName,
          TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
        }),
      );
  }

  for (const [id, resource] of of('AWS::S3::Bucket')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    const Bucket = physical[id]!.ref;
    await s3.send(new CreateBucketCommand({ Bucket }));
    created.buckets.push(Bucket);
    const versioning = p.VersioningConfiguration as { Status?: 'Enabled' | 'Suspended' } | undefined;
    if (versioning?.Status)
      await s3.send(
        new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: versioning.Status } }),
      );
  }

  for (const [id, resource] of of('AWS::SSM::Parameter')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    const Name = physical[id]!.ref;
    await ssm.send(
      new PutParameterCommand({
        Name,
        Value: rewrite(String(p.Value)),
        Type: (p.Type as 'String' | 'StringList') ?? 'String',
        Description: p.Description as string | undefined,
        Overwrite: true,
      }),
    );
    created.parameters.push(Name);
  }

  // Roles with their trust and policies (inline ones and the AWS::IAM::Policy resources attached to
  // them): what the functions' calls would be checked against, and what STS assumes on the emulator.
  const iam = { AWS_ENDPOINT_URL: target.endpoint, AWS_REGION: target.region };
  const attached = of('AWS::IAM::Policy').map(([, r]) =>
    resolver.resolve<Record<string, unknown>>(r.Properties ?? {}),
  );
  for (const [id, resource] of of('AWS::IAM::Role')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    const name = physical[id]!.ref;
    const policies: Record<string, object> = {};
    for (const inline of (p.Policies as { PolicyName: string; PolicyDocument: object }[] | undefined) ?? [])
      policies[inline.PolicyName] = inline.PolicyDocument;
    for (const policy of attached)
      if (((policy.Roles as string[] | undefined) ?? []).includes(name))
        policies[String(policy.PolicyName)] = policy.PolicyDocument as object;
    physical[id]!.arn = await ensureRole(iam, {
      name,
      trustPolicy: p.AssumeRolePolicyDocument as object,
      policies,
    });
    created.roles.push({ name, policies: Object.keys(policies) });
  }

  for (const [id] of of('AWS::Scheduler::ScheduleGroup')) {
    const Name = physical[id]!.ref;
    await scheduler.send(new CreateScheduleGroupCommand({ Name }));
    created.groups.push(Name);
  }
  for (const [id, resource] of of('AWS::Scheduler::Schedule')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    await scheduler.send(
      new CreateScheduleCommand({ ...(p as unknown as CreateScheduleCommandInput), Name: physical[id]!.ref }),
    );
  }

  const remove: CreatedResources['remove'] = async (names) => {
    const quietly = async (what: () => Promise<unknown>) => {
      try {
        await what();
      } catch {
        // already gone, or never made
      }
    };
    // Only names of this start: an assembly synthesized elsewhere may name resources (fleet-events,
    // /fleet/) that other users of the shared emulator have; those stay.
    const ours = (name: string) => name.toLowerCase().replace(/^\//, '').startsWith(prefix.toLowerCase());
    const queueName = (url: string) => url.slice(url.lastIndexOf('/') + 1);
    // Queues the functions created (agents' command queues) share the deployment's prefix.
    const queueUrls = new Set(created.queues);
    if (names.queuePrefix) {
      const listed = await sqs
        .send(new ListQueuesCommand({ QueueNamePrefix: names.queuePrefix }))
        .catch(() => undefined);
      for (const url of listed?.QueueUrls ?? []) queueUrls.add(url);
    }
    for (const QueueUrl of [...queueUrls].filter((url) => ours(queueName(url))))
      await quietly(() => sqs.send(new DeleteQueueCommand({ QueueUrl })));
    for (const TableName of created.tables.filter(ours))
      await quietly(() => dynamo.send(new DeleteTableCommand({ TableName })));
    for (const Bucket of created.buckets.filter(ours)) {
      await quietly(async () => {
        for (;;) {
          const page = await s3.send(new ListObjectVersionsCommand({ Bucket }));
          const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
            Key: v.Key!,
            VersionId: v.VersionId,
          }));
          if (!objects.length) break;
          await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: objects } }));
        }
        await s3.send(new DeleteBucketCommand({ Bucket }));
      });
    }
    const parameters = new Set(created.parameters);
    if (names.ssmPrefix) {
      await quietly(async () => {
        let NextToken: string | undefined;
        do {
          const page = await ssm.send(
            new GetParametersByPathCommand({ Path: names.ssmPrefix, Recursive: true, NextToken }),
          );
          for (const p of page.Parameters ?? []) parameters.add(p.Name!);
          NextToken = page.NextToken;
        } while (NextToken);
      });
    }
    const all = [...parameters].filter(ours);
    for (let i = 0; i < all.length; i += 10)
      await quietly(() => ssm.send(new DeleteParametersCommand({ Names: all.slice(i, i + 10) })));
    // Deleting a group deletes its schedules, those the functions made included.
    for (const Name of new Set([...created.groups, ...names.scheduleGroups].filter(ours)))
      await quietly(() => scheduler.send(new DeleteScheduleGroupCommand({ Name })));
    for (const role of created.roles.filter((r) => ours(r.name))) {
      for (const PolicyName of role.policies)
        await quietly(() => iamCall(iam, 'DeleteRolePolicy', { RoleName: role.name, PolicyName }));
      await quietly(() => iamCall(iam, 'DeleteRole', { RoleName: role.name }));
    }
    for (const client of [sqs, dynamo, s3, ssm, scheduler]) client.destroy();
  };

  return { physical, resolver, remove };
}

function pick<T>(record: Record<string, T>, keys: string[]): Record<string, T> {
  return Object.fromEntries(keys.filter((k) => k in record).map((k) => [k, record[k]!]));
}
