/**
 * The policies a synthesized template gives each Lambda function: the identity policies of its
 * execution role (AWS::IAM::Policy and AWS::IAM::ManagedPolicy resources attached to it, and the
 * role's inline Policies), and the resource policies of the template's queues, buckets and roles.
 */

export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** Turns CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, ...) into concrete values. */
export type Resolve = (value: unknown) => unknown;

export interface PolicyDocument {
  Version?: string;
  Statement: unknown[];
}

export interface RoleIdentity {
  roleLogicalId: string;
  roleArn: string;
  identityPolicies: { name: string; policy: PolicyDocument }[];
}

export interface FunctionIdentity extends RoleIdentity {
  functionLogicalId: string;
  /** The principal a Lambda invocation signs as: the role's session named after the function. */
  principalArn: string;
}

/** Resource policies by the ARN of the resource they guard (queue, bucket, role trust policy). */
export type ResourcePolicies = Map<string, PolicyDocument>;

const refTo = (value: unknown): string | undefined =>
  value && typeof value === 'object' && 'Ref' in value && typeof (value as { Ref: unknown }).Ref === 'string'
    ? (value as { Ref: string }).Ref
    : undefined;

const roleOfFunction = (role: unknown): string | undefined => {
  const getAtt = (role as { 'Fn::GetAtt'?: unknown } | undefined)?.['Fn::GetAtt'];
  if (Array.isArray(getAtt) && getAtt[1] === 'Arn' && typeof getAtt[0] === 'string') return getAtt[0];
  return undefined;
};

function asDocument(value: unknown, where: string): PolicyDocument {
  const doc = value as PolicyDocument | undefined;
  if (!doc || !Array.isArray(doc.Statement)) {
    // A single statement object is valid IAM too.
    if (doc && typeof doc === 'object' && doc.Statement && typeof doc.Statement === 'object')
      return { ...doc, Statement: [doc.Statement] };
    throw new Error(`${where}: not a policy document after resolving: ${JSON.stringify(value)}`);
  }
  return { Version: doc.Version ?? '2012-10-17', Statement: doc.Statement };
}

/** Every AWS::IAM::Role of the template with its identity policies, by role ARN. */
export function roleIdentities(template: CfnTemplate, resolve: Resolve): Map<string, RoleIdentity> {
  const resources = template.Resources;
  const out = new Map<string, RoleIdentity>();
  for (const [roleLogicalId, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::IAM::Role') continue;
    const role = r.Properties ?? {};
    const identityPolicies: RoleIdentity['identityPolicies'] = [];
    for (const [i, inline] of (
      (role.Policies as { PolicyName?: unknown; PolicyDocument: unknown }[] | undefined) ?? []
    ).entries()) {
      identityPolicies.push({
        name: String(resolve(inline.PolicyName) ?? `${roleLogicalId}-inline-${i}`),
        policy: asDocument(resolve(inline.PolicyDocument), `${roleLogicalId} inline policy ${i}`),
      });
    }
    const managedArns = (role.ManagedPolicyArns as unknown[] | undefined) ?? [];
    const managedHere = new Set<string>();
    for (const [id, p] of Object.entries(resources)) {
      if (p.Type !== 'AWS::IAM::Policy' && p.Type !== 'AWS::IAM::ManagedPolicy') continue;
      const attached = ((p.Properties?.Roles as unknown[] | undefined) ?? []).some(
        (x) => refTo(x) === roleLogicalId,
      );
      const viaRole = managedArns.some((x) => refTo(x) === id);
      if (!attached && !viaRole) continue;
      if (p.Type === 'AWS::IAM::ManagedPolicy') managedHere.add(id);
      identityPolicies.push({ name: id, policy: asDocument(resolve(p.Properties?.PolicyDocument), id) });
    }
    // Managed policies from outside the template cannot be read here: refuse rather than under-grant silently.
    const external = managedArns.filter((x) => !managedHere.has(refTo(x) ?? ''));
    if (external.length > 0)
      throw new Error(
        `${roleLogicalId}: managed policies from outside the template cannot be checked: ${JSON.stringify(external)}`,
      );
    const roleArn = String(resolve({ 'Fn::GetAtt': [roleLogicalId, 'Arn'] }));
    out.set(roleArn, { roleLogicalId, roleArn, identityPolicies });
  }
  return out;
}

/** The principal of a session of a role: `arn:aws:sts::<account>:assumed-role/<name>/<session>`. */
export const sessionPrincipal = (account: string, roleArn: string, session: string) =>
  `arn:aws:sts::${account}:assumed-role/${roleArn.split('/').pop()}/${session}`;

/** Every AWS::Lambda::Function of the template with the policies of its role, by function logical id. */
export function functionIdentities(
  template: CfnTemplate,
  resolve: Resolve,
  account: string,
  roles: Map<string, RoleIdentity> = roleIdentities(template, resolve),
): Map<string, FunctionIdentity> {
  const resources = template.Resources;
  const byLogicalId = new Map([...roles.values()].map((r) => [r.roleLogicalId, r]));
  const out = new Map<string, FunctionIdentity>();
  for (const [functionLogicalId, fn] of Object.entries(resources)) {
    if (fn.Type !== 'AWS::Lambda::Function') continue;
    // A function whose role the template does not define may do nothing the checker can vouch for.
    const roleLogicalId = roleOfFunction(fn.Properties?.Role);
    const role = byLogicalId.get(roleLogicalId ?? '') ?? {
      roleLogicalId: `${functionLogicalId} (no role of this template)`,
      roleArn: `arn:aws:iam::${account}:role/${roleLogicalId ?? functionLogicalId}`,
      identityPolicies: [],
    };
    const functionName = String(resolve({ Ref: functionLogicalId }) ?? functionLogicalId);
    out.set(functionLogicalId, {
      ...role,
      functionLogicalId,
      principalArn: sessionPrincipal(account, role.roleArn, functionName),
    });
  }
  return out;
}

/** Queue policies, bucket policies and role trust policies, by the guarded resource's ARN. */
export function resourcePolicies(template: CfnTemplate, resolve: Resolve): ResourcePolicies {
  const out: ResourcePolicies = new Map();
  const add = (arn: unknown, doc: PolicyDocument) => {
    if (typeof arn !== 'string') return;
    const existing = out.get(arn);
    out.set(arn, existing ? { ...existing, Statement: [...existing.Statement, ...doc.Statement] } : doc);
  };
  for (const [id, r] of Object.entries(template.Resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::SQS::QueuePolicy') {
      const doc = asDocument(resolve(p.PolicyDocument), id);
      for (const q of (p.Queues as unknown[] | undefined) ?? []) {
        const queueId = refTo(q);
        if (queueId) add(resolve({ 'Fn::GetAtt': [queueId, 'Arn'] }), doc);
      }
    } else if (r.Type === 'AWS::S3::BucketPolicy') {
      const bucket = resolve(p.Bucket);
      if (typeof bucket === 'string')
        add(`arn:aws:s3:::${bucket}`, asDocument(resolve(p.PolicyDocument), id));
    } else if (r.Type === 'AWS::IAM::Role' && p.AssumeRolePolicyDocument) {
      add(
        resolve({ 'Fn::GetAtt': [id, 'Arn'] }),
        asDocument(resolve(p.AssumeRolePolicyDocument), `${id} trust policy`),
      );
    }
  }
  return out;
}

/** The resource policy that guards `resource`: the queue's, the bucket's (for its objects too), the role's trust policy. */
export function resourcePolicyFor(
  policies: ResourcePolicies,
  action: string,
  resource: string,
): PolicyDocument | undefined {
  if (action.startsWith('s3:')) {
    const bucket = resource.match(/^arn:aws:s3:::([^/]+)/)?.[1];
    return bucket ? policies.get(`arn:aws:s3:::${bucket}`) : undefined;
  }
  // A trust policy answers only whether the role may be assumed, not whether it may be passed.
  if (action.startsWith('iam:')) return undefined;
  return policies.get(resource);
}
