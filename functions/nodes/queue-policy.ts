/** The IAM policies of node identity, shared by the control plane (STS session policy), the CDK stack and the emulator setup. */

/**
 * What an agent does with its command queue: receive (long poll, with a visibility timeout),
 * delete after reporting, and extend a message it still works on. Nothing else.
 */
export const AGENT_QUEUE_ACTIONS = [
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibility',
] as const;

/** The agent role's own policy: every node queue of the deployment (`<QUEUE_PREFIX>node-*`). */
export function nodeQueuesArnPattern(
  partition: string,
  region: string,
  account: string,
  queuePrefix: string,
): string {
  return `arn:${partition}:sqs:${region}:${account}:${queuePrefix}node-*`;
}

/** An IAM policy allowing the agent's queue actions on `resource` (the role's pattern, or one queue). */
export function agentQueuePolicy(resource: string) {
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: [...AGENT_QUEUE_ACTIONS], Resource: resource }],
  };
}

/** The session policy of one node's credentials: its queue only (STS intersects it with the role's). */
export const nodeSessionPolicy = (queueArn: string) => agentQueuePolicy(queueArn);

/**
 * `https://sqs.<region>.amazonaws.com/<account>/<name>` (or an emulator's `http://host:port/<account>/<name>`)
 * → `arn:<partition>:sqs:<region>:<account>:<name>`; the partition is the agent role's.
 */
export function queueArnFromUrl(queueUrl: string, roleArn: string, region: string): string {
  const [account, name, ...rest] = new URL(queueUrl).pathname.split('/').filter(Boolean);
  const partition = roleArn.split(':')[1];
  if (!account || !/^\d{12}$/.test(account) || !name || rest.length || !partition) {
    throw new Error(`not an SQS queue URL: ${queueUrl}`);
  }
  return `arn:${partition}:sqs:${region}:${account}:${name}`;
}
