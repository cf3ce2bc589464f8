/**
 * What an AWS API request asks IAM for: the SigV4 caller, the service, and each (action, resource)
 * pair IAM authorises it as. Covers the protocols the control plane's adapters speak (DynamoDB, SQS
 * and SSM over JSON, EventBridge Scheduler and S3 over REST, STS over the query protocol, Bedrock
 * Runtime) and says so when it cannot tell, so an unknown call is never waved through.
 */
import {
  header,
  keysOf,
  str,
  strings,
  type Arn,
  type Authorization,
  type Described,
  type DescribedRequest,
  type Done,
  type Fail,
  type RawRequest,
  type Scope,
} from './request-parts.js';
import { describeS3 } from './s3-requests.js';

export type { Authorization, Described, DescribedRequest, RawRequest } from './request-parts.js';
export { s3Target } from './s3-requests.js';

/** The credential scope of a SigV4 request, from the Authorization header or a presigned URL. */
export function signingScope(req: Pick<RawRequest, 'url' | 'headers'>): Scope | undefined {
  const auth = header(req as RawRequest, 'authorization');
  let credential = auth?.match(/Credential=([^,\s]+)/)?.[1];
  if (!credential)
    credential = new URL(req.url, 'http://x').searchParams.get('X-Amz-Credential') ?? undefined;
  if (!credential) return undefined;
  const [accessKeyId, , region, service] = credential.split('/');
  if (!accessKeyId || !region || !service) return undefined;
  return { accessKeyId, region, service };
}

/**
 * Describes a request, or says why it cannot. `account` is the account of resources named without
 * one (table, parameter, schedule names): the emulator's, which is also the functions' own.
 */
export function describeRequest(req: RawRequest, account: string): Described {
  const scope = signingScope(req);
  if (!scope) return { error: 'unsigned request (no SigV4 credential scope)' };
  const arn = (service: string, resource: string) =>
    `arn:aws:${service}:${scope.region}:${account}:${resource}`;
  const done = (operation: string, authorizations: Authorization[]): DescribedRequest => ({
    service: scope.service,
    operation,
    accessKeyId: scope.accessKeyId,
    region: scope.region,
    authorizations,
  });
  const fail = (error: string): Described => ({
    error,
    accessKeyId: scope.accessKeyId,
    service: scope.service,
  });
  try {
    switch (scope.service) {
      case 'dynamodb':
        return dynamodb(req, arn, done, fail);
      case 'sqs':
        return sqs(req, scope, account, done, fail);
      case 'ssm':
        return ssm(req, arn, done, fail);
      case 'scheduler':
        return scheduler(req, arn, done, fail);
      case 's3':
        return describeS3(req, done, fail);
      case 'sts':
        return sts(req, done, fail);
      case 'bedrock':
        return bedrock(req, scope.region, account, done, fail);
      default:
        return fail(`service "${scope.service}" is not one the checker knows`);
    }
  } catch (error) {
    return fail(`unreadable ${scope.service} request: ${(error as Error).message}`);
  }
}

/** `Prefix.Operation` from X-Amz-Target, with the JSON body. */
function jsonTarget(
  req: RawRequest,
  prefix: string,
): { operation: string; body: Record<string, unknown> } | undefined {
  const target = header(req, 'x-amz-target');
  if (!target?.startsWith(`${prefix}.`)) return undefined;
  const text = req.body.toString('utf8');
  return {
    operation: target.slice(prefix.length + 1),
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

// ---------- DynamoDB (JSON 1.0, X-Amz-Target DynamoDB_20120810.*) ----------

/** Operations on one table named by TableName (IAM action = operation). */
const DYNAMO_TABLE_OPS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'DescribeTable',
  'CreateTable',
  'DeleteTable',
  'UpdateTable',
  'UpdateTimeToLive',
  'DescribeTimeToLive',
  'DescribeContinuousBackups',
]);
/** Items of a transaction: each is authorised as the single-item action on its table. */
const TRANSACT_ACTIONS: Record<string, string> = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
  Get: 'GetItem',
};

function dynamodb(req: RawRequest, arn: Arn, done: Done, fail: Fail): Described {
  const call = jsonTarget(req, 'DynamoDB_20120810');
  if (!call) return fail('DynamoDB request without X-Amz-Target DynamoDB_20120810.*');
  const { operation, body } = call;
  // TableName may be a table ARN (SDK v3 accepts both).
  const table = (name: string) => (name.startsWith('arn:') ? name : arn('dynamodb', `table/${name}`));
  const action = `dynamodb:${operation}`;
  if (DYNAMO_TABLE_OPS.has(operation)) {
    const name = str(body.TableName);
    if (!name) return fail(`dynamodb:${operation} without TableName`);
    const index = str(body.IndexName);
    // A query or scan of a GSI/LSI is authorised on the index's ARN, not the table's.
    const resource =
      index && (operation === 'Query' || operation === 'Scan')
        ? `${table(name)}/index/${index}`
        : table(name);
    return done(operation, [{ action, resource }]);
  }
  if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
    const tables = keysOf(body.RequestItems);
    if (tables.length === 0) return fail(`dynamodb:${operation} without RequestItems`);
    return done(
      operation,
      tables.map((t) => ({ action, resource: table(t) })),
    );
  }
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
    const items = Array.isArray(body.TransactItems)
      ? (body.TransactItems as Record<string, { TableName?: string }>[])
      : [];
    const out: Authorization[] = [];
    for (const item of items) {
      for (const [kind, spec] of Object.entries(item)) {
        const single = TRANSACT_ACTIONS[kind];
        const name = str(spec?.TableName);
        if (!single || !name) return fail(`dynamodb:${operation} item "${kind}" not understood`);
        const auth = { action: `dynamodb:${single}`, resource: table(name) };
        if (!out.some((a) => a.action === auth.action && a.resource === auth.resource)) out.push(auth);
      }
    }
    if (out.length === 0) return fail(`dynamodb:${operation} without TransactItems`);
    return done(operation, out);
  }
  if (operation === 'ListTables' || operation === 'DescribeLimits' || operation === 'DescribeEndpoints')
    return done(operation, [{ action, resource: '*' }]);
  return fail(`DynamoDB operation ${operation} is not one the checker knows`);
}

// ---------- SQS (JSON 1.0, X-Amz-Target AmazonSQS.*; the query protocol of older SDKs too) ----------

/** Batch operations are authorised as their single-message action. */
const SQS_ACTION: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};
const SQS_BY_URL = new Set([
  'SendMessage',
  'SendMessageBatch',
  'ReceiveMessage',
  'DeleteMessage',
  'DeleteMessageBatch',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
  'GetQueueAttributes',
  'SetQueueAttributes',
  'DeleteQueue',
  'PurgeQueue',
  'ListDeadLetterSourceQueues',
  'ListQueueTags',
  'TagQueue',
  'UntagQueue',
  'AddPermission',
  'RemovePermission',
]);

function sqs(req: RawRequest, scope: Scope, account: string, done: Done, fail: Fail): Described {
  let operation: string;
  let body: Record<string, unknown>;
  const call = jsonTarget(req, 'AmazonSQS');
  if (call) {
    ({ operation, body } = call);
  } else {
    const form = new URLSearchParams(req.body.toString('utf8'));
    const query = new URL(req.url, 'http://x').searchParams;
    operation = form.get('Action') ?? query.get('Action') ?? '';
    if (!operation) return fail('SQS request with neither X-Amz-Target AmazonSQS.* nor Action');
    body = Object.fromEntries([...query, ...form]);
  }
  const action = `sqs:${SQS_ACTION[operation] ?? operation}`;
  const queueArn = (name: string, owner = account) => `arn:aws:sqs:${scope.region}:${owner}:${name}`;
  if (SQS_BY_URL.has(operation)) {
    const url = str(body.QueueUrl);
    if (!url) return fail(`sqs:${operation} without QueueUrl`);
    // https://sqs.<region>.amazonaws.com/<account>/<name>; emulators keep the last two segments.
    const [owner, name] = new URL(url).pathname.split('/').filter(Boolean).slice(-2);
    if (!owner || !name) return fail(`sqs:${operation}: QueueUrl ${url} has no account/name path`);
    return done(operation, [{ action, resource: queueArn(name, owner) }]);
  }
  if (operation === 'CreateQueue' || operation === 'GetQueueUrl') {
    const name = str(body.QueueName);
    if (!name) return fail(`sqs:${operation} without QueueName`);
    return done(operation, [
      { action, resource: queueArn(name, str(body.QueueOwnerAWSAccountId) ?? account) },
    ]);
  }
  if (operation === 'ListQueues') return done(operation, [{ action, resource: '*' }]);
  return fail(`SQS operation ${operation} is not one the checker knows`);
}

// ---------- SSM (JSON 1.1, X-Amz-Target AmazonSSM.*) ----------

const SSM_BY_NAME = new Set([
  'GetParameter',
  'PutParameter',
  'DeleteParameter',
  'GetParameterHistory',
  'LabelParameterVersion',
  'UnlabelParameterVersion',
]);

function ssm(req: RawRequest, arn: Arn, done: Done, fail: Fail): Described {
  const call = jsonTarget(req, 'AmazonSSM');
  if (!call) return fail('SSM request without X-Amz-Target AmazonSSM.*');
  const { operation, body } = call;
  const action = `ssm:${operation}`;
  // `/fleet/api-key` → parameter/fleet/api-key; a name without a leading slash gets one.
  const parameter = (name: string) =>
    name.startsWith('arn:') ? name : arn('ssm', `parameter${name.startsWith('/') ? '' : '/'}${name}`);
  if (SSM_BY_NAME.has(operation)) {
    const name = str(body.Name);
    if (!name) return fail(`ssm:${operation} without Name`);
    return done(operation, [{ action, resource: parameter(name) }]);
  }
  if (operation === 'GetParameters' || operation === 'DeleteParameters') {
    const names = strings(body.Names);
    if (names.length === 0) return fail(`ssm:${operation} without Names`);
    return done(
      operation,
      names.map((n) => ({ action, resource: parameter(n) })),
    );
  }
  if (operation === 'GetParametersByPath') {
    const path = str(body.Path);
    if (!path) return fail('ssm:GetParametersByPath without Path');
    // Authorised on the path as given: `/fleet/` → parameter/fleet/.
    return done(operation, [{ action, resource: parameter(path) }]);
  }
  if (operation === 'DescribeParameters') return done(operation, [{ action, resource: '*' }]);
  return fail(`SSM operation ${operation} is not one the checker knows`);
}

// ---------- EventBridge Scheduler (REST JSON) ----------

function scheduler(req: RawRequest, arn: Arn, done: Done, fail: Fail): Described {
  const url = new URL(req.url, 'http://x');
  const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const method = req.method.toUpperCase();
  const body = req.body.length ? (JSON.parse(req.body.toString('utf8')) as Record<string, unknown>) : {};
  const [kind, name] = segments;
  if (kind === 'schedules' && segments.length === 1 && method === 'GET')
    return done('ListSchedules', [{ action: 'scheduler:ListSchedules', resource: '*' }]);
  if (kind === 'schedule-groups' && segments.length === 1 && method === 'GET')
    return done('ListScheduleGroups', [{ action: 'scheduler:ListScheduleGroups', resource: '*' }]);
  if (kind === 'schedules' && name && segments.length === 2) {
    const group =
      (method === 'POST' || method === 'PUT' ? str(body.GroupName) : url.searchParams.get('groupName')) ??
      'default';
    const resource = arn('scheduler', `schedule/${group}/${name}`);
    const op = {
      POST: 'CreateSchedule',
      PUT: 'UpdateSchedule',
      GET: 'GetSchedule',
      DELETE: 'DeleteSchedule',
    }[method];
    if (!op) return fail(`Scheduler ${method} /schedules/{Name} is not an operation`);
    const auths: Authorization[] = [{ action: `scheduler:${op}`, resource }];
    // Creating or updating a schedule hands its target role to Scheduler: iam:PassRole on that role.
    const role = str((body.Target as { RoleArn?: unknown } | undefined)?.RoleArn);
    if (role)
      auths.push({
        action: 'iam:PassRole',
        resource: role,
        context: { 'iam:PassedToService': 'scheduler.amazonaws.com' },
      });
    return done(op, auths);
  }
  if (kind === 'schedule-groups' && name && segments.length === 2) {
    const op = { POST: 'CreateScheduleGroup', GET: 'GetScheduleGroup', DELETE: 'DeleteScheduleGroup' }[
      method
    ];
    if (!op) return fail(`Scheduler ${method} /schedule-groups/{Name} is not an operation`);
    return done(op, [{ action: `scheduler:${op}`, resource: arn('scheduler', `schedule-group/${name}`) }]);
  }
  if (kind === 'tags' && name) {
    const op = { GET: 'ListTagsForResource', POST: 'TagResource', DELETE: 'UntagResource' }[method];
    if (!op) return fail(`Scheduler ${method} /tags/{arn} is not an operation`);
    return done(op, [{ action: `scheduler:${op}`, resource: segments.slice(1).join('/') }]);
  }
  return fail(`Scheduler ${method} ${url.pathname} is not an operation the checker knows`);
}

// ---------- STS (query protocol) ----------

function sts(req: RawRequest, done: Done, fail: Fail): Described {
  const params = new URLSearchParams(req.body.toString('utf8'));
  for (const [k, v] of new URL(req.url, 'http://x').searchParams) if (!params.has(k)) params.set(k, v);
  const operation = params.get('Action') ?? '';
  // Needs no permission: AWS answers it for any valid credentials.
  if (operation === 'GetCallerIdentity') return done(operation, []);
  if (operation === 'AssumeRole') {
    const role = params.get('RoleArn');
    if (!role) return fail('sts:AssumeRole without RoleArn');
    const auths: Authorization[] = [{ action: 'sts:AssumeRole', resource: role }];
    // Session tags and a source identity are authorised separately, on the same role.
    if ([...params.keys()].some((k) => k.startsWith('Tags.member.')))
      auths.push({ action: 'sts:TagSession', resource: role });
    if (params.has('SourceIdentity')) auths.push({ action: 'sts:SetSourceIdentity', resource: role });
    return done(operation, auths);
  }
  return fail(`STS operation ${operation || '(none)'} is not one the checker knows`);
}

// ---------- Bedrock Runtime (REST JSON) ----------

function bedrock(req: RawRequest, region: string, account: string, done: Done, fail: Fail): Described {
  const url = new URL(req.url, 'http://x');
  const m = url.pathname.match(
    /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/,
  );
  if (!m?.[1] || !m[2])
    return fail(`Bedrock ${req.method} ${url.pathname} is not an operation the checker knows`);
  const model = decodeURIComponent(m[1]);
  const streaming = m[2].endsWith('stream');
  const op =
    {
      converse: 'Converse',
      'converse-stream': 'ConverseStream',
      invoke: 'InvokeModel',
      'invoke-with-response-stream': 'InvokeModelWithResponseStream',
    }[m[2]] ?? m[2];
  // Converse is authorised as InvokeModel. A geo prefix (us., eu., ...) names a cross-region inference profile.
  const resource = model.startsWith('arn:')
    ? model
    : /^(us|eu|apac|global|us-gov|jp|au|ca)\./.test(model)
      ? `arn:aws:bedrock:${region}:${account}:inference-profile/${model}`
      : `arn:aws:bedrock:${region}::foundation-model/${model}`;
  return done(op, [
    { action: streaming ? 'bedrock:InvokeModelWithResponseStream' : 'bedrock:InvokeModel', resource },
  ]);
}
