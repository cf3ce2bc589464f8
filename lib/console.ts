import {
  CfnOutput,
  Duration,
  Fn,
  RemovalPolicy,
  SecretValue,
  Stack,
  Validations,
  type CfnElement,
  type StackProps,
} from 'aws-cdk-lib';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  Function as EdgeFunction,
  FunctionCode,
  FunctionEventType,
  FunctionRuntime,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  OriginProtocolPolicy,
  OriginRequestPolicy,
  OriginSslPolicy,
  PriceClass,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
  type BehaviorOptions,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { DockerImage } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { join } from 'node:path';
import { ORIGIN_HEADER } from '../functions/core/origin.js';
import { buildConsoleSync } from '../web/build.js';
import { PROJECT_ROOT } from './bundling.js';
import { ApiWebAcl } from './firewall.js';
import { readSettings } from './settings.js';

export interface ConsoleStackProps extends StackProps {
  /** The HTTP API's endpoint, `https://<id>.execute-api.<region>.amazonaws.com` (its `$default` stage). */
  httpApiEndpoint: string;
  /** The WebSocket API's wss URL (`WebSocketUrl`); not behind this distribution (docs/architecture.md). */
  wsUrl: string;
  /** Paths of the route table: their first segments become the distribution's API behaviours. */
  apiPaths: readonly string[];
  /**
   * With the web ACL on (`apiWaf`): the name of the Secrets Manager secret CloudFront sends the API
   * as `x-fleet-origin`; the functions refuse requests without it, so the execute-api URL cannot go
   * round the WAF. By name: resolved by CloudFormation at deploy, never in a template.
   */
  originSecretName?: string;
}

/** What the console's bucket serves at the top level; no route of the API may start like these. */
export const CONSOLE_FILES = ['index.html', 'assets', 'config.json'] as const;
/** CloudFront's default quota of cache behaviours per distribution. */
export const MAX_BEHAVIOURS = 25;

/**
 * The API behaviours' path patterns: `/<segment>*` per first path segment of the route table
 * (`/api*` is `/api` and everything under it), a segment another one starts with left out
 * (`/install*` covers `/install.sh`).
 */
export function apiPathPatterns(paths: readonly string[]): string[] {
  const segments = [...new Set(paths.map((p) => p.split('/')[1] ?? '').filter(Boolean))].sort();
  const kept = segments.filter((s) => !segments.some((o) => o !== s && s.startsWith(o)));
  for (const s of kept) {
    const clash = CONSOLE_FILES.find((f) => f.startsWith(s));
    if (clash) throw new Error(`API paths under /${s} would take the console's /${clash} away from it`);
  }
  if (kept.length >= MAX_BEHAVIOURS)
    throw new Error(
      `${kept.length} top-level API paths: more than CloudFront's ${MAX_BEHAVIOURS} behaviours per distribution (group routes under fewer prefixes, or raise the quota and MAX_BEHAVIOURS)`,
    );
  return kept.map((s) => `/${s}*`);
}

/**
 * CloudFront Function on the API behaviours: the API sees its execute-api host as Host, so the
 * viewer's host goes on as x-forwarded-host (replacing any the caller sent), and the install
 * script and join commands (functions/system/install.ts baseUrlOf) name the distribution's URL.
 */
export const FORWARDED_HOST_FUNCTION = `function handler(event) {
  var request = event.request;
  request.headers['x-forwarded-host'] = { value: request.headers.host.value };
  return request;
}`;

/** `https://abc.execute-api.eu-west-1.amazonaws.com/` → `abc.execute-api.eu-west-1.amazonaws.com`. */
const hostOf = (url: string) => Fn.select(2, Fn.split('/', url));

/**
 * The console (web/) and the HTTP API behind one CloudFront distribution, so the console calls
 * its own origin (no CORS, one deploy): the console from a private bucket read by CloudFront only
 * (origin access control) with security headers, and every top-level path of the route table as a
 * behaviour to the HTTP API (no caching, every method, the caller's headers and query passed on).
 * With `apiWaf` the distribution carries the web ACL and sends the API the origin secret. A stack
 * of its own so the control plane's template (what `npm run start:stack` runs) stays functions,
 * API and data.
 */
export class ConsoleStack extends Stack {
  readonly bucket: Bucket;
  readonly distribution: Distribution;

  constructor(scope: Construct, id: string, props: ConsoleStackProps) {
    super(scope, id, props);

    const logs = new Bucket(this, 'Logs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: BucketEncryption.S3_MANAGED,
      // CloudFront standard logs are delivered with ACLs.
      objectOwnership: ObjectOwnership.OBJECT_WRITER,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket is where the console bucket and its CloudFront distribution log; logging it would log the log writes.',
    });

    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 'bucket/',
      // Built files only: the next deployment writes them again.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // The same policy as the local runtime's (local/console-static.ts): the API is this origin,
    // the WebSocket API its own host.
    const csp = [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data: blob:",
      `connect-src 'self' wss://${hostOf(props.wsUrl)}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "form-action 'none'",
    ].join('; ');
    const headers = new ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'GPU fleet console: CSP, HSTS, no framing, no sniffing, no referrer',
      securityHeadersBehavior: {
        contentSecurityPolicy: { contentSecurityPolicy: csp, override: true },
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(365),
          includeSubdomains: true,
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
        xssProtection: { protection: true, modeBlock: true, override: true },
      },
    });

    const settings = readSettings(this);
    if (settings.apiWaf && !props.originSecretName)
      throw new Error(
        'apiWaf: the API behind the web ACL needs the origin secret (ControlPlaneStack.originSecretName)',
      );
    const webAcl = settings.apiWaf
      ? new ApiWebAcl(this, 'ApiWebAcl', {
          rateLimit: settings.wafRateLimit,
          ...(settings.wafWebAclArn ? { webAclArn: settings.wafWebAclArn } : {}),
        })
      : undefined;

    const apiOrigin = new HttpOrigin(hostOf(props.httpApiEndpoint), {
      protocolPolicy: OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [OriginSslPolicy.TLS_V1_2],
      // Calls that wait for agents answer within API Gateway's 29 s.
      readTimeout: Duration.seconds(30),
      // A dynamic reference: CloudFormation puts the value in at deploy; the template holds none.
      ...(props.originSecretName
        ? {
            customHeaders: {
              [ORIGIN_HEADER]: SecretValue.secretsManager(props.originSecretName).unsafeUnwrap(),
            },
          }
        : {}),
    });
    const forwardedHost = new EdgeFunction(this, 'ForwardedHost', {
      comment: 'GPU fleet API: the viewer host as x-forwarded-host',
      runtime: FunctionRuntime.JS_2_0,
      code: FunctionCode.fromInline(FORWARDED_HOST_FUNCTION),
    });
    // An API: nothing cached, every method, the caller's own headers (the API key) and query passed on.
    const api: BehaviorOptions = {
      origin: apiOrigin,
      viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: AllowedMethods.ALLOW_ALL,
      cachePolicy: CachePolicy.CACHING_DISABLED,
      originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      functionAssociations: [{ function: forwardedHost, eventType: FunctionEventType.VIEWER_REQUEST }],
    };

    this.distribution = new Distribution(this, 'Distribution', {
      comment: settings.apiWaf ? 'GPU fleet console and API behind WAF' : 'GPU fleet console and API',
      defaultRootObject: 'index.html',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: headers,
        compress: true,
      },
      additionalBehaviors: Object.fromEntries(apiPathPatterns(props.apiPaths).map((p) => [p, api])),
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: logs,
      logFilePrefix: 'cloudfront/',
      ...(webAcl ? { webAclId: webAcl.webAclArn } : {}),
    });
    for (const [id, reason] of [
      [
        'AwsSolutions-CFR1',
        'The console and the API are for operators and nodes wherever they are; access is by API key or node credential, not by country.',
      ],
      [
        'AwsSolutions-CFR4',
        'The default *.cloudfront.net certificate allows only the TLS versions CloudFront chooses (a minimum protocol needs a custom domain and its certificate).',
      ],
      ...(webAcl
        ? []
        : ([
            [
              'AwsSolutions-CFR2',
              'The web ACL is a setting (-c apiWaf=true); without it the HTTP API stage throttle guards the API.',
            ],
          ] as const)),
    ] as const)
      Validations.of(this.distribution).acknowledge({ id, reason });

    const deployment = new BucketDeployment(this, 'Files', {
      sources: [
        Source.asset(join(PROJECT_ROOT, 'web'), {
          exclude: ['dist'],
          // esbuild in this process; the image is never pulled.
          bundling: {
            image: DockerImage.fromRegistry('node:24-alpine'),
            local: {
              tryBundle(outputDir: string) {
                buildConsoleSync(outputDir);
                return true;
              },
            },
          },
        }),
        // The API is this origin (apiUrl ''); the WebSocket API keeps its own URL.
        Source.jsonData('config.json', { apiUrl: '', wsUrl: props.wsUrl }),
      ],
      destinationBucket: this.bucket,
      distribution: this.distribution,
      distributionPaths: ['/*'],
      memoryLimit: 256,
    });
    // CDK's own deployment function (a singleton of the stack), not the console's code: its grants are CDK's.
    const bucketId = this.resolve(this.getLogicalId(this.bucket.node.defaultChild as CfnElement)) as string;
    const role = deployment.handlerRole;
    const handler = this.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
    if (handler?.node.defaultChild)
      Validations.of(handler.node.defaultChild).acknowledge({
        id: 'AwsSolutions-L1',
        reason: "CDK's bucket deployment function runs the Python runtime its CDK version ships.",
      });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: "CDK's bucket deployment function logs with the AWS managed basic execution policy.",
    });
    for (const finding of [
      'Action::s3:Abort*',
      'Action::s3:DeleteObject*',
      'Action::s3:GetBucket*',
      'Action::s3:GetObject*',
      'Action::s3:List*',
      `Resource::<${bucketId}.Arn>/*`,
      'Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*',
      // cloudfront:CreateInvalidation takes no resource narrower than *.
      'Resource::*',
    ])
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[${finding}]`,
        reason:
          "CDK's bucket deployment function: reads its asset objects, replaces every key of the console bucket, invalidates the distribution.",
      });

    new CfnOutput(this, 'ConsoleUrl', {
      value: `https://${this.distribution.distributionDomainName}`,
      description: 'The console; it calls the API on this same origin',
    });
    new CfnOutput(this, 'ApiUrl', {
      value: `https://${this.distribution.distributionDomainName}/`,
      description:
        'The control plane URL for agents (FLEET_URL), the CLI (fleet login) and install commands: the API through CloudFront (and its web ACL with apiWaf)',
    });
  }
}
