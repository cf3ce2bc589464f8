import type { AwsCredentialIdentity } from '@smithy/types';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Config } from '../core/config.js';
import { stsClient } from './aws-clients.js';
import { Sha256 } from './sha256.js';

/**
 * IAM on an emulator (moto, LocalStack), for what the CDK stack would create: the agent role of
 * the local emulator mode, and the roles and users of the permission suites. IAM's Query API
 * signed with the SDK's own SigV4 signer; only here, so the Lambda bundles carry no IAM client.
 */

export class IamCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'IamCallError';
  }
}

type EmulatorConfig = Pick<Config, 'AWS_ENDPOINT_URL' | 'AWS_REGION'>;

/** One IAM Query API call; answers the response XML. `credentials`: the default chain when absent. */
export async function iamCall(
  config: EmulatorConfig,
  action: string,
  params: Record<string, string>,
  credentials?: AwsCredentialIdentity,
): Promise<string> {
  if (!config.AWS_ENDPOINT_URL) throw new Error('IAM calls here are for an emulator (AWS_ENDPOINT_URL)');
  const url = new URL(config.AWS_ENDPOINT_URL);
  const body = new URLSearchParams({ Action: action, Version: '2010-05-08', ...params }).toString();
  const signer = new SignatureV4({
    service: 'iam',
    region: 'us-east-1',
    sha256: Sha256,
    credentials: credentials ?? (await stsClient(config)).config.credentials,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const res = await fetch(`${url.origin}/`, {
    method: 'POST',
    headers: signed.headers,
    body,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (!res.ok) {
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.status}`;
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? text.slice(0, 200);
    throw new IamCallError(code, `IAM ${action}: ${code}: ${message}`);
  }
  return text;
}

/** The text of the first `<tag>` in an IAM response. */
export function xmlField(xml: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
}

export interface RoleDefinition {
  name: string;
  trustPolicy: object;
  /** Inline policies by name. */
  policies: Record<string, object>;
}

/** Creates the role or converges an existing one to the definition; answers its ARN. */
export async function ensureRole(
  config: EmulatorConfig,
  role: RoleDefinition,
  credentials?: AwsCredentialIdentity,
): Promise<string> {
  const trust = JSON.stringify(role.trustPolicy);
  let arn: string | undefined;
  try {
    arn = xmlField(
      await iamCall(
        config,
        'CreateRole',
        { RoleName: role.name, AssumeRolePolicyDocument: trust },
        credentials,
      ),
      'Arn',
    );
  } catch (error) {
    if (!(error instanceof IamCallError && error.code === 'EntityAlreadyExists')) throw error;
    await iamCall(
      config,
      'UpdateAssumeRolePolicy',
      { RoleName: role.name, PolicyDocument: trust },
      credentials,
    );
    arn = xmlField(await iamCall(config, 'GetRole', { RoleName: role.name }, credentials), 'Arn');
  }
  for (const [name, policy] of Object.entries(role.policies)) {
    await iamCall(
      config,
      'PutRolePolicy',
      { RoleName: role.name, PolicyName: name, PolicyDocument: JSON.stringify(policy) },
      credentials,
    );
  }
  if (!arn) throw new Error(`IAM answered no ARN for role ${role.name}`);
  return arn;
}
