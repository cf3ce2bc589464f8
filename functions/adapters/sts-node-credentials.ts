import type { STSClient } from '@aws-sdk/client-sts';
import type { Config } from '../core/config.js';
import { nodeSessionPolicy, queueArnFromUrl } from '../nodes/queue-policy.js';
import type { NodeCredentials, QueueCredentials } from '../ports/node-credentials.js';
import { stsClient } from './aws-clients.js';

type StsConfig = Pick<Config, 'AWS_REGION' | 'AWS_ENDPOINT_URL' | 'AGENT_CREDENTIALS_SECONDS'> & {
  AGENT_ROLE_ARN: string;
};

/**
 * STS AssumeRole of the agent role with a session policy naming one queue: the session may do
 * only what both the role's policy and the session policy allow, so a node's credentials reach
 * its own queue and no other node's.
 */
export class StsNodeCredentials implements NodeCredentials {
  constructor(
    private readonly config: StsConfig,
    private readonly injected?: STSClient,
  ) {}

  async forQueue(queueUrl: string, sessionName: string): Promise<QueueCredentials> {
    const client = this.injected ?? (await stsClient(this.config));
    const { AssumeRoleCommand } = await import('@aws-sdk/client-sts');
    const queueArn = queueArnFromUrl(queueUrl, this.config.AGENT_ROLE_ARN, this.config.AWS_REGION);
    const out = await client.send(
      new AssumeRoleCommand({
        RoleArn: this.config.AGENT_ROLE_ARN,
        RoleSessionName: sessionName,
        Policy: JSON.stringify(nodeSessionPolicy(queueArn)),
        DurationSeconds: this.config.AGENT_CREDENTIALS_SECONDS,
      }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw new Error('STS AssumeRole answered without credentials');
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration.toISOString(),
    };
  }
}
