import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { ROUTE_GROUPS } from '../../../functions/groups/index.js';
import { routes } from '../../../functions/routes.js';
import type { RouteGroup } from '../../../functions/core/route.js';
import { Api } from '../../../lib/api.js';
import { PROJECT_ROOT } from '../../../lib/bundling.js';
import { reserveConcurrency } from '../../../lib/function.js';
import { readSettings } from '../../../lib/settings.js';

/**
 * The deployed API's protections, on the real Api construct and the route table with stand-in
 * functions (inline code, so nothing is bundled): stage throttling and reserved concurrency;
 * cdk-nag clean for what these constructs add. The optional WAF is on the console's distribution
 * (front.test.ts).
 */
const outdirs: string[] = [];
afterAll(() => {
  for (const d of outdirs) rmSync(d, { recursive: true, force: true });
});

function synth(context: Record<string, unknown>) {
  const cache = join(PROJECT_ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outdir = mkdtempSync(join(cache, 'cdk-api-protection-'));
  outdirs.push(outdir);
  const app = new App({ outdir, context });
  const stack = new Stack(app, 'Protected', { env: { account: '123456789012', region: 'us-east-1' } });
  const settings = readSettings(stack);
  const functions = Object.fromEntries(
    ROUTE_GROUPS.map((group) => {
      const fn = new LambdaFunction(stack, `Fn-${group}`, {
        runtime: Runtime.NODEJS_24_X,
        handler: 'index.handler',
        code: Code.fromInline('exports.handler = async () => ({ statusCode: 200 });'),
      });
      // A stand-in's own role is CDK's default, not the product's (lib/function.ts makes its own).
      Validations.of(fn.role!).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'stand-in function of this suite',
      });
      return [group, { fn }];
    }),
  ) as Record<RouteGroup, { fn: LambdaFunction }>;
  new Api(stack, 'Api', {
    routes,
    functions: Object.fromEntries(ROUTE_GROUPS.map((g) => [g, functions[g].fn])) as Record<
      RouteGroup,
      LambdaFunction
    >,
    corsOrigins: ['https://console.example'],
    logRetention: RetentionDays.ONE_WEEK,
    throttle: { rateLimit: settings.apiThrottleRate, burstLimit: settings.apiThrottleBurst },
  });
  reserveConcurrency(functions, settings.reservedConcurrency);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
    pluginReports: {
      violations: { ruleName: string; violatingResources: { resourceLogicalId: string }[] }[];
    }[];
  };
  // cdk-nag fails the synth on an unacknowledged finding; the report lists what was left.
  const template = Template.fromStack(stack);
  const findings = report.pluginReports.flatMap((r) =>
    r.violations.flatMap((v) => v.violatingResources.map((res) => `${v.ruleName} ${res.resourceLogicalId}`)),
  );
  return { template, findings };
}

describe('HTTP API stage throttling', () => {
  it('throttles the stage at the default rate and burst, cdk-nag clean', () => {
    const { template, findings } = synth({});
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
    });
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    template.resourceCountIs('AWS::CloudFront::Distribution', 0);
    expect(findings).toEqual([]);
  });

  it('takes the rate and burst from the settings', () => {
    const { template } = synth({ apiThrottleRate: '20', apiThrottleBurst: '40' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
    });
  });

  it('refuses settings that are not counts', () => {
    expect(() => synth({ apiThrottleRate: '-1' })).toThrow(/apiThrottleRate must be a number >= 0/);
    expect(() => synth({ apiThrottleBurst: '2.5' })).toThrow(/apiThrottleBurst must be a whole number/);
  });
});

describe('reserved concurrency', () => {
  it('reserves concurrency for the named functions only', () => {
    const { template } = synth({ reservedConcurrency: 'agent=50, system=5' });
    const reserved = Object.entries(
      template.findResources('AWS::Lambda::Function') as Record<
        string,
        { Properties: Record<string, unknown> }
      >,
    )
      .filter(([, r]) => r.Properties.ReservedConcurrentExecutions !== undefined)
      .map(([id, r]) => [id.replace(/[0-9A-F]{8}$/, ''), r.Properties.ReservedConcurrentExecutions])
      .sort();
    expect(reserved).toEqual([
      ['Fnagent', 50],
      ['Fnsystem', 5],
    ]);
  });

  it('refuses unknown functions and counts below zero', () => {
    expect(() => synth({ reservedConcurrency: 'agnet=5' })).toThrow(/unknown function agnet/);
    expect(() => synth({ reservedConcurrency: 'agent=-1' })).toThrow(/whole number >= 0/);
  });
});
