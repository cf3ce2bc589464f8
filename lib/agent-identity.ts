import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Effect, PolicyDocument, PolicyStatement, Role, type IRole } from 'aws-cdk-lib/aws-iam';
// cdk-nag's own rendering of a policy resource, so the acknowledgement matches its finding id.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import { Construct } from 'constructs';
import { agentQueuePolicy, nodeQueuesArnPattern } from '../functions/nodes/queue-policy.js';

export interface AgentIdentityProps {
  /** The deployment's queue prefix: the role reaches `<queuePrefix>node-*` only. */
  queuePrefix: string;
  /** The role of the function that serves POST /agent/credentials: the only principal that may assume this one. */
  vendedBy: IRole;
}

/**
 * Nodes hold no AWS identity of their own. The agent function assumes this role for a node with
 * a session policy naming that node's queue (functions/adapters/sts-node-credentials.ts), so the
 * credentials it hands out reach one queue, for at most an hour.
 */
export class AgentIdentity extends Construct {
  readonly role: Role;

  constructor(scope: Construct, id: string, props: AgentIdentityProps) {
    super(scope, id);
    const { partition, region, account } = Stack.of(this);
    const queues = nodeQueuesArnPattern(partition, region, account, props.queuePrefix);
    this.role = new Role(this, 'Role', {
      assumedBy: props.vendedBy,
      description:
        "Node agents' command queues: assumed by the agent function only, each session narrowed to one node's queue",
      // Role chaining (a Lambda role assuming this one) caps sessions at 1 h anyway.
      maxSessionDuration: Duration.hours(1),
      inlinePolicies: { NodeQueues: PolicyDocument.fromJson(agentQueuePolicy(queues)) },
    });
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${flattenCfnReference(Stack.of(this).resolve(queues))}]`,
      reason: `Node queues are created at runtime, one per node; the role reaches this deployment's "${props.queuePrefix}node-*" queues only, and every session is narrowed to one node's queue by its session policy.`,
    });
    props.vendedBy.addToPrincipalPolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['sts:AssumeRole'],
        resources: [this.role.roleArn],
      }),
    );
  }
}
