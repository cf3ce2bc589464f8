import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import { sessionNameFor } from '../../../functions/agent-api/queue-credentials.js';
import {
  AGENT_QUEUE_ACTIONS,
  nodeQueuesArnPattern,
  nodeSessionPolicy,
  queueArnFromUrl,
} from '../../../functions/nodes/queue-policy.js';

const ROLE = 'arn:aws:iam::123456789012:role/fleet-agent';

describe('node identity policies', () => {
  it('turns an SQS queue URL (AWS or emulator) into its ARN, in the agent role partition', () => {
    expect(
      queueArnFromUrl('https://sqs.eu-west-1.amazonaws.com/123456789012/fleet-node-a-1f', ROLE, 'eu-west-1'),
    ).toBe('arn:aws:sqs:eu-west-1:123456789012:fleet-node-a-1f');
    expect(queueArnFromUrl('http://127.0.0.1:4566/000000000000/x-node-b', ROLE, 'us-east-1')).toBe(
      'arn:aws:sqs:us-east-1:000000000000:x-node-b',
    );
    expect(
      queueArnFromUrl(
        'https://sqs.cn-north-1.amazonaws.com.cn/123456789012/fleet-node-c',
        'arn:aws-cn:iam::123456789012:role/fleet-agent',
        'cn-north-1',
      ),
    ).toBe('arn:aws-cn:sqs:cn-north-1:123456789012:fleet-node-c');
  });

  it('refuses what is not a queue URL', () => {
    for (const url of [
      'https://sqs.us-east-1.amazonaws.com/fleet-node-a',
      'https://sqs.us-east-1.amazonaws.com/12345/fleet-node-a',
      'https://sqs.us-east-1.amazonaws.com/123456789012/fleet-node-a/extra',
    ]) {
      expect(() => queueArnFromUrl(url, ROLE, 'us-east-1'), url).toThrow('not an SQS queue URL');
    }
  });

  it("names exactly one queue and the agent's three actions in a session policy", () => {
    expect(nodeSessionPolicy('arn:aws:sqs:us-east-1:123456789012:fleet-node-a')).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'],
          Resource: 'arn:aws:sqs:us-east-1:123456789012:fleet-node-a',
        },
      ],
    });
    expect(AGENT_QUEUE_ACTIONS).not.toContain('sqs:SendMessage');
    expect(nodeQueuesArnPattern('aws', 'us-east-1', '123456789012', 'fleet-')).toBe(
      'arn:aws:sqs:us-east-1:123456789012:fleet-node-*',
    );
  });

  it('names sessions after the node, within the 64 characters STS allows', () => {
    expect(sessionNameFor('gpu-1-0a1b2c3d')).toBe('node-gpu-1-0a1b2c3d');
    const long = sessionNameFor(`${'n'.repeat(40)}-0a1b2c3d`);
    expect(long).toHaveLength(54);
    expect(sessionNameFor('x'.repeat(80))).toHaveLength(64);
  });

  it('takes credential lifetimes from 900 s to 1 h (role chaining) and a role ARN', () => {
    expect(loadConfig({}).AGENT_CREDENTIALS_SECONDS).toBe(3600);
    expect(loadConfig({ AGENT_CREDENTIALS_SECONDS: '900' }).AGENT_CREDENTIALS_SECONDS).toBe(900);
    expect(() => loadConfig({ AGENT_CREDENTIALS_SECONDS: '899' })).toThrow('AGENT_CREDENTIALS_SECONDS');
    expect(() => loadConfig({ AGENT_CREDENTIALS_SECONDS: '3601' })).toThrow('AGENT_CREDENTIALS_SECONDS');
    expect(loadConfig({ AGENT_ROLE_ARN: ROLE }).AGENT_ROLE_ARN).toBe(ROLE);
    expect(() => loadConfig({ AGENT_ROLE_ARN: 'fleet-agent' })).toThrow('AGENT_ROLE_ARN');
  });
});
