import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App, Lazy, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../lib/bundling.js';
import { ConsoleStack } from '../../../lib/console.js';

const API = 'https://abc123.execute-api.eu-west-1.amazonaws.com';
const WS = 'wss://ws456.execute-api.eu-west-1.amazonaws.com/live';

let template: Template;
let outdir: string;
let report: { pluginReports: { pluginName: string; violations: { ruleName: string }[] }[] };
let resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;

beforeAll(() => {
  const cache = join(PROJECT_ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  outdir = mkdtempSync(join(cache, 'cdk-console-test-'));
  const app = new App({ outdir });
  // Tokens, as the control plane stack's outputs are.
  const stack = new ConsoleStack(app, 'Console', {
    httpApiEndpoint: Lazy.string({ produce: () => API }),
    wsUrl: Lazy.string({ produce: () => WS }),
    apiPaths: ['/api/nodes', '/agent/register', '/health', '/install.sh', '/install/{file}'],
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as typeof resources;
  report = JSON.parse(
    readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'),
  ) as typeof report;
}, 120_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('ConsoleStack', () => {
  it('passes cdk-nag AwsSolutions with every finding acknowledged', () => {
    expect(report.pluginReports.flatMap((r) => r.violations.map((v) => v.ruleName))).toEqual([]);
  });

  it('keeps the files in a private, encrypted, TLS-only bucket that logs its access', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: Match.objectLike({}),
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'bucket/' }),
    });
  });

  it('serves them through CloudFront with origin access control only, over HTTPS, index.html at /', () => {
    template.resourceCountIs('AWS::CloudFront::OriginAccessControl', 1);
    template.resourceCountIs('AWS::CloudFront::CloudFrontOriginAccessIdentity', 0);
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        DefaultRootObject: 'index.html',
        DefaultCacheBehavior: Match.objectLike({ ViewerProtocolPolicy: 'redirect-to-https' }),
        Origins: Match.arrayWith([Match.objectLike({ OriginAccessControlId: Match.anyValue() })]),
        Logging: Match.objectLike({ Prefix: 'cloudfront/' }),
      }),
    });
    // The bucket policy lets the distribution read, nobody else.
    const policy = Object.values(resources).find(
      (r) => r.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(r).includes('cloudfront.amazonaws.com'),
    );
    const statements = (
      policy?.Properties.PolicyDocument as {
        Statement: { Principal?: unknown; Action: unknown; Condition?: unknown }[];
      }
    ).Statement;
    const reads = statements.filter((s) =>
      JSON.stringify(s.Principal ?? '').includes('cloudfront.amazonaws.com'),
    );
    expect(reads).toHaveLength(1);
    expect(reads[0]!.Action).toBe('s3:GetObject');
    expect(JSON.stringify(reads[0]!.Condition)).toContain('AWS:SourceArn');
  });

  it('answers with security headers, the CSP naming only this origin and the WebSocket API', () => {
    const policy = Object.values(resources).find((r) => r.Type === 'AWS::CloudFront::ResponseHeadersPolicy');
    const config = policy?.Properties.ResponseHeadersPolicyConfig as {
      SecurityHeadersConfig: Record<string, Record<string, unknown>>;
    };
    const h = config.SecurityHeadersConfig;
    expect(h.FrameOptions).toEqual({ FrameOption: 'DENY', Override: true });
    expect(h.ContentTypeOptions).toEqual({ Override: true });
    expect(h.ReferrerPolicy).toEqual({ ReferrerPolicy: 'no-referrer', Override: true });
    expect(h.StrictTransportSecurity).toMatchObject({
      AccessControlMaxAgeSec: 31_536_000,
      IncludeSubdomains: true,
    });
    const csp = JSON.stringify(h.ContentSecurityPolicy);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain('connect-src');
    expect(csp).not.toContain('*');
    expect(csp).toContain('wss://');
    // The API is this origin now: no other https host.
    expect(csp).not.toContain('https://');
  });

  it('deploys the built console and a config.json of the WebSocket URL (the API is this origin), then invalidates the cache', () => {
    const deploy = Object.values(resources).find((r) => r.Type === 'Custom::CDKBucketDeployment');
    expect(deploy?.Properties).toMatchObject({ DistributionPaths: ['/*'], Prune: true });
    const markers = JSON.stringify(deploy?.Properties.SourceMarkers);
    expect(markers).not.toContain(API);
    expect(markers).toContain(WS);
    template.hasOutput('ConsoleUrl', Match.objectLike({}));
    template.hasOutput('ApiUrl', Match.objectLike({}));
  });
});
