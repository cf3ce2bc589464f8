import { Aws, CfnRule, Duration, Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HttpVersion,
  OriginProtocolPolicy,
  OriginRequestPolicy,
  OriginSslPolicy,
  PriceClass,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { CfnWebACL } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

export interface ApiFirewallProps {
  api: HttpApi;
  /** Requests one client address may make in any 5 minutes before it is blocked. */
  rateLimit: number;
  /** Use this web ACL (CLOUDFRONT scope) instead of creating one. */
  webAclArn?: string;
}

/** Name of the rate-based rule (and its CloudWatch metric). */
export const RATE_RULE_NAME = 'RequestsPerClientAddress';

/**
 * WAF in front of the HTTP API. WAF attaches to REST APIs, CloudFront, load balancers and a few
 * more, not to HTTP APIs, so the API is served through a CloudFront distribution (no caching,
 * every method, the caller's headers and query passed on) that carries a web ACL with a
 * rate-based rule per client address. A CLOUDFRONT-scope web ACL lives in us-east-1: created here,
 * the stack must be deployed there (a template rule says so at deploy time); elsewhere, give
 * `wafWebAclArn`. The execute-api URL stays reachable; the stage throttle guards it.
 */
export class ApiFirewall extends Construct {
  readonly distribution: Distribution;
  readonly webAclArn: string;
  /** `https://<distribution>/`: the API's URL through the firewall. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ApiFirewallProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (props.webAclArn) {
      this.webAclArn = props.webAclArn;
    } else {
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

    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'GPU fleet control plane API behind WAF',
      defaultBehavior: {
        origin: new HttpOrigin(Fn.select(2, Fn.split('/', props.api.apiEndpoint)), {
          protocolPolicy: OriginProtocolPolicy.HTTPS_ONLY,
          originSslProtocols: [OriginSslPolicy.TLS_V1_2],
          // Calls that wait for agents answer within API Gateway's 29 s.
          readTimeout: Duration.seconds(30),
        }),
        // An API: nothing cached, every method, and the caller's own headers (the API key) passed on.
        viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: AllowedMethods.ALLOW_ALL,
        cachePolicy: CachePolicy.CACHING_DISABLED,
        originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      },
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      webAclId: this.webAclArn,
    });
    this.url = `https://${this.distribution.distributionDomainName}/`;
    for (const [rule, reason] of [
      [
        'AwsSolutions-CFR1',
        'Nodes and operators call the API from wherever they are; access is by API key or node credential, not by country.',
      ],
      [
        'AwsSolutions-CFR3',
        "The HTTP API stage logs every request it serves (access logs), and the web ACL's metrics and sampled requests show what it blocked.",
      ],
      [
        'AwsSolutions-CFR4',
        'The default *.cloudfront.net certificate allows only the TLS versions CloudFront chooses (a minimum protocol needs a custom domain and its certificate).',
      ],
    ] as const)
      Validations.of(this.distribution).acknowledge({ id: rule, reason });
  }
}
