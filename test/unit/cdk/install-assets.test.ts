import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../lib/bundling.js';
import { createControlPlane, INSTALL_ASSETS_STACK_NAME, STACK_NAME } from '../../../lib/app.js';

/**
 * The install files on AWS: the control plane's install bucket (private, read by the system
 * function alone) and the InstallAssetsStack's deployment into it, with its asset built as
 * `cdk synth` builds it (the agent bundle, the pinned runtime of this machine's architecture).
 */
let outdir: string;
let plane: Template;
let assets: Template;
let report: {
  pluginReports: { pluginName: string; violations: { ruleName: string; violatingResources: unknown[] }[] }[];
};
let assetFiles: string[];

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

beforeAll(() => {
  const cache = join(PROJECT_ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  outdir = mkdtempSync(join(cache, 'cdk-install-assets-test-'));
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  // Only the install stack bundles: the functions' code is not what this suite checks.
  const app = new App({
    outdir,
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [INSTALL_ASSETS_STACK_NAME] },
  });
  createControlPlane(app);
  const assembly = app.synth();
  plane = Template.fromJSON(assembly.getStackByName(STACK_NAME).template as Record<string, unknown>);
  const stack = assembly.getStackByName(INSTALL_ASSETS_STACK_NAME);
  assets = Template.fromJSON(stack.template as Record<string, unknown>);
  report = JSON.parse(
    readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8'),
  ) as typeof report;
  // The deployment's asset: the one staged folder holding agent.mjs.
  const staged = readdirSync(assembly.directory)
    .filter((d) => d.startsWith('asset.'))
    .map((d) => join(assembly.directory, d))
    .find((d) => existsSync(join(d, 'agent.mjs')));
  assetFiles = staged ? readdirSync(staged).sort() : [];
}, 240_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const resourcesOf = (t: Template) => t.toJSON().Resources as Resources;
const bucketId = () =>
  Object.entries(resourcesOf(plane)).find(
    ([id, r]) => r.Type === 'AWS::S3::Bucket' && id.startsWith('InstallAssetsBucket'),
  )![0];

describe('install files on AWS', () => {
  it('passes cdk-nag AwsSolutions in both stacks with every finding acknowledged', () => {
    expect(report.pluginReports.flatMap((r) => r.violations.map((v) => v.ruleName))).toEqual([]);
  });

  it('keeps them in a private, encrypted, TLS-only bucket of the control plane that logs its access', () => {
    const bucket = resourcesOf(plane)[bucketId()]!.Properties;
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.BucketEncryption).toBeDefined();
    expect(bucket.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(bucket.LoggingConfiguration).toMatchObject({ LogFilePrefix: 'install-assets/' });
    plane.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId() },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('tells the system function the bucket, and only its role may read it: GetObject under install/ and ListBucket', () => {
    const id = bucketId();
    const fns = Object.values(resourcesOf(plane)).filter((r) => r.Type === 'AWS::Lambda::Function');
    const withBucket = fns.filter((f) =>
      JSON.stringify(
        (f.Properties.Environment as { Variables?: unknown } | undefined)?.Variables ?? {},
      ).includes(`"INSTALL_ASSETS_BUCKET":{"Ref":"${id}"}`),
    );
    expect(withBucket.map((f) => f.Properties.Description)).toEqual(['Control plane HTTP routes: system']);

    const policies = Object.values(resourcesOf(plane)).filter((r) => r.Type === 'AWS::IAM::Policy');
    const reading = policies.filter((p) => JSON.stringify(p.Properties.PolicyDocument).includes(`"${id}"`));
    expect(reading).toHaveLength(1);
    expect(JSON.stringify(reading[0]!.Properties.Roles)).toContain('SystemFunction');
    // CDK merges statements: pair every action with every resource that names the bucket.
    const grants = (
      reading[0]!.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }
    ).Statement.flatMap((st) =>
      [st.Resource]
        .flat()
        .filter((r) => JSON.stringify(r).includes(`"${id}"`))
        .flatMap((r) => [st.Action].flat().map((action) => ({ effect: st.Effect, action, resource: r }))),
    );
    expect(grants).toEqual(
      expect.arrayContaining([
        {
          effect: 'Allow',
          action: 's3:GetObject',
          resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id, 'Arn'] }, '/install/*']] },
        },
        { effect: 'Allow', action: 's3:ListBucket', resource: { 'Fn::GetAtt': [id, 'Arn'] } },
      ]),
    );
    expect(grants).toHaveLength(2);
  });

  it('carries no deployment function in the control plane template (what start:stack runs)', () => {
    expect(Object.values(resourcesOf(plane)).map((r) => r.Type)).not.toContain('Custom::CDKBucketDeployment');
  });

  it('deploys the files under install/ of that bucket from its own stack', () => {
    assets.resourceCountIs('Custom::CDKBucketDeployment', 1);
    const [deployment] = Object.values(resourcesOf(assets)).filter(
      (r) => r.Type === 'Custom::CDKBucketDeployment',
    );
    expect(deployment!.Properties.DestinationBucketKeyPrefix).toBe('install/');
    expect(JSON.stringify(deployment!.Properties.DestinationBucketName)).toContain('InstallAssetsBucket');
    assets.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 1024,
      EphemeralStorage: { Size: 4096 },
    });
  });

  it("builds the asset: the agent bundle, its ssh2 file and this machine's pinned runtime, nothing else", () => {
    expect(assetFiles).toEqual(['agent-ssh2.cjs', 'agent.mjs', 'node-x86_64.tar.gz']);
  });
});
