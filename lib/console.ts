import {
  CfnOutput,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  Validations,
  type CfnElement,
  type StackProps,
} from 'aws-cdk-lib';
import {
  Distribution,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  PriceClass,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { DockerImage } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { join } from 'node:path';
import { buildConsoleSync } from '../web/build.js';
import { PROJECT_ROOT } from './bundling.js';

export interface ConsoleStackProps extends StackProps {
  /** The HTTP API's URL (the control plane stack's `ApiUrl`). */
  apiUrl: string;
  /** The WebSocket API's wss URL (`WebSocketUrl`). */
  wsUrl: string;
}

/** `https://abc.execute-api.eu-west-1.amazonaws.com/` → `abc.execute-api.eu-west-1.amazonaws.com`. */
const hostOf = (url: string) => Fn.select(2, Fn.split('/', url));

/**
 * The console (web/) on AWS: a private bucket read by CloudFront only (origin access control),
 * security headers on every answer, and `config.json` holding the API and WebSocket URLs of the
 * control plane stack, written by the deployment. A stack of its own so the control plane's
 * template (what `npm run start:stack` runs) stays functions, API and data.
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

    // The same policy as the local runtime's (local/console-static.ts), with the APIs' own hosts.
    const csp = [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data: blob:",
      `connect-src 'self' https://${hostOf(props.apiUrl)} wss://${hostOf(props.wsUrl)}`,
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

    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'GPU fleet console',
      defaultRootObject: 'index.html',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: headers,
        compress: true,
      },
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: logs,
      logFilePrefix: 'cloudfront/',
    });
    for (const [id, reason] of [
      [
        'AwsSolutions-CFR1',
        'The console is for operators wherever they are; access is by API key, not by country.',
      ],
      [
        'AwsSolutions-CFR2',
        'Static files only: every call that acts goes to the API with a key; a WAF here would guard files.',
      ],
      [
        'AwsSolutions-CFR4',
        'The default *.cloudfront.net certificate allows only the TLS versions CloudFront chooses (a minimum protocol needs a custom domain and its certificate).',
      ],
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
        Source.jsonData('config.json', { apiUrl: props.apiUrl, wsUrl: props.wsUrl }),
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
      description:
        'The console. Add it to the corsOrigins setting (cdk.json or -c corsOrigins=) so the API answers it',
    });
  }
}
