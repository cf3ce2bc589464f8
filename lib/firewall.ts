import { Aws, CfnRule, Fn, Stack, Token } from 'aws-cdk-lib';
import { CfnWebACL } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

export interface ApiWebAclProps {
  /** Requests one client address may make in any 5 minutes before it is blocked. */
  rateLimit: number;
  /** Use this web ACL (CLOUDFRONT scope) instead of creating one. */
  webAclArn?: string;
}

/** Name of the rate-based rule (and its CloudWatch metric). */
export const RATE_RULE_NAME = 'RequestsPerClientAddress';

/**
 * The WAF web ACL of the CloudFront distribution that serves the console and the API
 * (lib/console.ts). WAF attaches to REST APIs, CloudFront, load balancers and a few more, not to
 * HTTP APIs, so it sits on the distribution, with a rate-based rule per client address. A
 * CLOUDFRONT-scope web ACL lives in us-east-1: created here, the stack must be deployed there (a
 * template rule says so at deploy time); elsewhere, give `wafWebAclArn`.
 */
export class ApiWebAcl extends Construct {
  readonly webAclArn: string;

  constructor(scope: Construct, id: string, props: ApiWebAclProps) {
    super(scope, id);
    if (props.webAclArn) {
      this.webAclArn = props.webAclArn;
      return;
    }
    const stack = Stack.of(this);
    if (!Token.isUnresolved(stack.region) && stack.region !== 'us-east-1')
      throw new Error(
        `apiWaf: a CloudFront web ACL is created in us-east-1 only; this stack is in ${stack.region}: deploy it there or set wafWebAclArn to a CLOUDFRONT-scope web ACL`,
      );
    new CfnRule(this, 'WebAclRegion', {
      assertions: [
        {
          assert: Fn.conditionEquals(Aws.REGION, 'us-east-1'),
          assertDescription:
            'apiWaf creates a CloudFront (global) web ACL, which lives in us-east-1: deploy there, or set wafWebAclArn',
        },
      ],
    });
    const acl = new CfnWebACL(this, 'WebAcl', {
      scope: 'CLOUDFRONT',
      description: 'GPU fleet control plane API: requests per client address',
      defaultAction: { allow: {} },
      visibilityConfig: {
        cloudWatchMetricsEnabled: true,
        metricName: 'GpuFleetApi',
        sampledRequestsEnabled: true,
      },
      rules: [
        {
          name: RATE_RULE_NAME,
          priority: 0,
          action: { block: {} },
          statement: {
            rateBasedStatement: {
              limit: props.rateLimit,
              evaluationWindowSec: 300,
              aggregateKeyType: 'IP',
            },
          },
          visibilityConfig: {
            cloudWatchMetricsEnabled: true,
            metricName: RATE_RULE_NAME,
            sampledRequestsEnabled: true,
          },
        },
      ],
    });
    this.webAclArn = acl.attrArn;
  }
}
