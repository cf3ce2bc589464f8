import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORIGIN_HEADER } from '../../../functions/core/origin.js';
import { routes } from '../../../functions/routes.js';
import { CONSOLE_STACK_NAME, createControlPlane, STACK_NAME } from '../../../lib/app.js';
import { PROJECT_ROOT } from '../../../lib/bundling.js';
import { FORWARDED_HOST_FUNCTION, MAX_BEHAVIOURS, apiPathPatterns } from '../../../lib/console.js';
import { ApiWebAcl, RATE_RULE_NAME } from '../../../lib/firewall.js';
import { ROUTE_GROUPS } from '../../../lib/groups.js';

/**
 * The console and the API behind one CloudFront distribution (lib/console.ts), in the real app
 * (bundling skipped: the template does not depend on the code), with and without the web ACL.
 * With it, CloudFront sends the origin secret and the HTTP functions require it, so the
 * execute-api URL cannot go round the WAF. cdk-nag runs in every synth; its report must be empty.
 */
const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
  context: Record<string, unknown>;
};
type Resource = { Type: string; Properties: Record<string, unknown> };
type Behaviour = Record<string, unknown> & { PathPattern: string; TargetOriginId: string };
type Origin = Record<string, unknown> & { Id: string; OriginCustomHeaders?: unknown[] };

const outdirs: string[] = [];
afterAll(() => {
  for (const d of outdirs) rmSync(d, { recursive: true, force: true });
});

function synth(settings: Record<string, unknown>) {
  const cache = join(PROJECT_ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outdir = mkdtempSync(join(cache, 'cdk-front-test-'));
  outdirs.push(outdir);
  const app = new App({
    outdir,
    context: { ...cdkJson.context, ...settings, 'aws:cdk:bundling-stacks': [] },
  });
  createControlPlane(app);
  const assembly: CloudAssembly = app.synth();
  const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
    pluginReports: { violations: { ruleName: string }[] }[];
  };
  const front = Template.fromJSON(assembly.getStackByName(CONSOLE_STACK_NAME).template as object);
  const controlPlane = Template.fromJSON(assembly.getStackByName(STACK_NAME).template as object);
  const config = Object.values(front.toJSON().Resources as Record<string, Resource>).find(
    (r) => r.Type === 'AWS::CloudFront::Distribution',
  )!.Properties.DistributionConfig as { CacheBehaviors: Behaviour[]; Origins: Origin[] } & Record<
    string,
    unknown
  >;
  return {
    front,
    controlPlane,
    config,
    findings: report.pluginReports.flatMap((r) => r.violations.map((v) => v.ruleName)),
  };
}

const functionsOf = (t: Template) =>
  Object.values(t.toJSON().Resources as Record<string, Resource>).filter(
    (r) =>
      r.Type === 'AWS::Lambda::Function' &&
      String(r.Properties.Description ?? '').startsWith('Control plane'),
  );
const envOf = (fn: Resource) =>
  (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;

describe('apiPathPatterns', () => {
  it("gives one behaviour per top-level segment of the route table, covering the segment's own path", () => {
    const patterns = apiPathPatterns(routes.map((r) => r.path));
    for (const p of ['/api*', '/agent*', '/health*', '/install*', '/openapi.json*', '/docs*'])
      expect(patterns).toContain(p);
    // `/install*` covers `/install.sh`.
    expect(patterns).not.toContain('/install.sh*');
    expect(patterns.length).toBeLessThan(MAX_BEHAVIOURS);
    // Every route of the table matches exactly one pattern, and none of the console's files does.
    const matches = (pattern: string, path: string) => path.startsWith(pattern.slice(0, -1));
    for (const r of routes)
      expect({ path: r.path, n: patterns.filter((p) => matches(p, r.path)).length }).toEqual({
        path: r.path,
        n: 1,
      });
    for (const f of ['/index.html', '/assets/app.js', '/config.json', '/'])
      expect(patterns.filter((p) => matches(p, f))).toEqual([]);
  });

  it("refuses a route table that would take the console's files or outgrow CloudFront's behaviours", () => {
    expect(() => apiPathPatterns(['/assets/x'])).toThrow(/console's \/assets/);
    expect(() => apiPathPatterns(['/a'])).toThrow(/console's \/assets/);
    const many = Array.from({ length: MAX_BEHAVIOURS }, (_, i) => `/p${String(i).padStart(2, '0')}x/y`);
    expect(() => apiPathPatterns(many)).toThrow(/behaviours per distribution/);
  });
});

describe('the CloudFront function on the API behaviours', () => {
  it("passes the viewer's host on as x-forwarded-host, replacing one the caller sent", () => {
    // cloudfront-js-2.0 is ECMAScript: the function runs as written.
    const handler = new Function(`${FORWARDED_HOST_FUNCTION}; return handler;`)() as (e: unknown) => {
      headers: Record<string, { value: string }>;
    };
    const out = handler({
      request: {
        method: 'GET',
        uri: '/api/nodes',
        headers: {
          host: { value: 'd1234.cloudfront.net' },
          'x-forwarded-host': { value: 'evil.example' },
          authorization: { value: 'Bearer k' },
        },
      },
    });
    expect(out.headers['x-forwarded-host']).toEqual({ value: 'd1234.cloudfront.net' });
    expect(out.headers.authorization).toEqual({ value: 'Bearer k' });
  });
});

describe('one distribution for the console and the API (no web ACL)', () => {
  let s: ReturnType<typeof synth>;
  beforeAll(() => {
    s = synth({ registryUrl: 'https://registry.example.com', outboundAllowlist: '10.0.0.0/8' });
  }, 180_000);

  it('serves the console from S3 by default and every API path from the HTTP API, uncached, every method', () => {
    const patterns = apiPathPatterns(routes.map((r) => r.path));
    expect(s.config.CacheBehaviors.map((b) => b.PathPattern).sort()).toEqual([...patterns].sort());
    const s3 = s.config.Origins.find((o) => o.S3OriginConfig);
    const api = s.config.Origins.find((o) => o.CustomOriginConfig);
    expect(s.config.Origins).toHaveLength(2);
    expect((s.config.DefaultCacheBehavior as Behaviour).TargetOriginId).toBe(s3!.Id);
    expect(api).toMatchObject({
      CustomOriginConfig: { OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'] },
    });
    // The origin is the HTTP API's own endpoint host.
    expect(JSON.stringify(api!.DomainName)).toContain('ApiEndpoint');
    expect(api!.OriginCustomHeaders).toBeUndefined();
    for (const b of s.config.CacheBehaviors)
      expect(b).toMatchObject({
        TargetOriginId: api!.Id,
        ViewerProtocolPolicy: 'https-only',
        AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
        // Managed policies: CachingDisabled, AllViewerExceptHostHeader (Authorization and the query pass on).
        CachePolicyId: '4135ea2d-6df8-44a3-9df3-4b5a84be39ad',
        OriginRequestPolicyId: 'b689b0a8-53d0-40ab-baf2-68738e2966ac',
        FunctionAssociations: [expect.objectContaining({ EventType: 'viewer-request' })],
      });
    s.front.hasResourceProperties('AWS::CloudFront::Function', {
      FunctionCode: FORWARDED_HOST_FUNCTION,
      FunctionConfig: Match.objectLike({ Runtime: 'cloudfront-js-2.0' }),
    });
    expect(s.config.WebACLId).toBeUndefined();
    s.front.resourceCountIs('AWS::WAFv2::WebACL', 0);
  });

  it('gives the distribution as ApiUrl; the execute-api URL stays an output of the control plane', () => {
    const out = s.front.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(out.ApiUrl!.Value)).toContain('DomainName');
    expect(JSON.stringify(out.ConsoleUrl!.Value)).toContain('DomainName');
    s.controlPlane.hasOutput('ApiUrl', Match.objectLike({}));
    s.controlPlane.resourceCountIs('AWS::SecretsManager::Secret', 0);
    for (const fn of functionsOf(s.controlPlane)) expect(envOf(fn).ORIGIN_SECRET_PARAMETER).toBeUndefined();
  });

  it('gives the functions the registry and allowlist settings', () => {
    for (const fn of functionsOf(s.controlPlane))
      expect(envOf(fn)).toMatchObject({
        REGISTRY_URL: 'https://registry.example.com',
        OUTBOUND_ALLOWLIST: '10.0.0.0/8',
      });
  });

  it('is cdk-nag clean', () => {
    expect(s.findings).toEqual([]);
  });
});

describe('with the web ACL (-c apiWaf=true)', () => {
  let s: ReturnType<typeof synth>;
  beforeAll(() => {
    s = synth({ apiWaf: 'true', wafRateLimit: '1000' });
  }, 180_000);

  it('attaches a web ACL with a rate-based rule per client address to the distribution', () => {
    s.front.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'CLOUDFRONT',
      DefaultAction: { Allow: {} },
      Rules: [
        Match.objectLike({
          Name: RATE_RULE_NAME,
          Action: { Block: {} },
          Statement: {
            RateBasedStatement: { Limit: 1000, AggregateKeyType: 'IP', EvaluationWindowSec: 300 },
          },
        }),
      ],
    });
    expect(s.config.WebACLId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/WebAcl/), 'Arn'] });
    // A deploy outside us-east-1 stops at a template rule that says why.
    expect(JSON.stringify(s.front.toJSON().Rules)).toContain('apiWaf creates a CloudFront (global) web ACL');
  });

  it('sends the API the origin secret by dynamic reference, never its value', () => {
    const api = s.config.Origins.find((o) => o.CustomOriginConfig)!;
    expect(api.OriginCustomHeaders).toEqual([
      {
        HeaderName: ORIGIN_HEADER,
        HeaderValue: '{{resolve:secretsmanager:fleet/origin-secret:SecretString:::}}',
      },
    ]);
    s.controlPlane.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'fleet/origin-secret',
      GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
    });
    // Generated by Secrets Manager: no value in the template.
    const secret = Object.values(s.controlPlane.toJSON().Resources as Record<string, Resource>).find(
      (r) => r.Type === 'AWS::SecretsManager::Secret',
    );
    expect(secret?.Properties.SecretString).toBeUndefined();
  });

  it('makes every HTTP function require it (and may read it), the WebSocket and events functions not', () => {
    const fns = functionsOf(s.controlPlane);
    const http = fns.filter((f) => String(f.Properties.Description).startsWith('Control plane HTTP routes'));
    expect(http).toHaveLength(ROUTE_GROUPS.length);
    for (const fn of http)
      expect(envOf(fn).ORIGIN_SECRET_PARAMETER).toBe('/aws/reference/secretsmanager/fleet/origin-secret');
    for (const fn of fns.filter((f) => !http.includes(f)))
      expect(envOf(fn).ORIGIN_SECRET_PARAMETER).toBeUndefined();
    const policies = Object.values(s.controlPlane.toJSON().Resources as Record<string, Resource>).filter(
      (r) => r.Type === 'AWS::IAM::Policy',
    );
    const granting = (action: string) =>
      policies.filter((p) =>
        (p.Properties.PolicyDocument as { Statement: { Action: string | string[] }[] }).Statement.some((st) =>
          [st.Action].flat().includes(action),
        ),
      );
    expect(granting('secretsmanager:GetSecretValue')).toHaveLength(ROUTE_GROUPS.length);
    const reference = granting('ssm:GetParameter').filter((p) =>
      JSON.stringify(p.Properties.PolicyDocument).includes(
        'parameter/aws/reference/secretsmanager/fleet/origin-secret',
      ),
    );
    expect(reference).toHaveLength(ROUTE_GROUPS.length);
  });

  it("leaves ApiUrl to the distribution: the control plane's execute-api URL is no output", () => {
    expect(Object.keys(s.controlPlane.toJSON().Outputs as object)).not.toContain('ApiUrl');
    s.front.hasOutput('ApiUrl', Match.objectLike({}));
  });

  it('is cdk-nag clean', () => {
    expect(s.findings).toEqual([]);
  });

  it('takes a given web ACL instead of creating one', () => {
    const arn = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/fleet/0a1b2c3d';
    const given = synth({ apiWaf: 'true', wafWebAclArn: arn });
    given.front.resourceCountIs('AWS::WAFv2::WebACL', 0);
    expect(given.config.WebACLId).toBe(arn);
    expect(given.findings).toEqual([]);
  }, 180_000);
});

describe('ApiWebAcl', () => {
  it('refuses to create a CloudFront web ACL outside us-east-1, and rate limits WAF cannot count', () => {
    const stack = new Stack(new App(), 'Elsewhere', {
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    expect(() => new ApiWebAcl(stack, 'Acl', { rateLimit: 100 })).toThrow(/us-east-1 only.*wafWebAclArn/);
    // A given ARN works anywhere.
    expect(new ApiWebAcl(stack, 'Given', { rateLimit: 100, webAclArn: 'arn:x' }).webAclArn).toBe('arn:x');
    expect(() => synth({ apiWaf: 'true', wafRateLimit: '5' })).toThrow(/wafRateLimit must be from 10/);
  });
});
