import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  AssetHashType,
  DockerImage,
  RemovalPolicy,
  Size,
  Stack,
  Validations,
  type StackProps,
} from 'aws-cdk-lib';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectOwnership,
  type IBucket,
} from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
// cdk-nag's own rendering of a policy resource, so acknowledgements match its finding ids.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import { Construct } from 'constructs';
import { INSTALL_ARCHES, INSTALL_ASSETS_PREFIX, localArch, pinnedNode } from '../functions/system/install.js';
import { PROJECT_ROOT } from './bundling.js';

/**
 * The bucket of the install files (agent bundle, Node.js runtimes, agent image archives): private,
 * TLS only, read by the system function alone, which answers GET /install/{file} with a presigned
 * redirect (a runtime or an image is far past Lambda's 6 MB response).
 */
export class InstallAssetsBucket extends Construct {
  readonly bucket: Bucket;

  constructor(scope: Construct, id: string, props: { accessLogs: IBucket }) {
    super(scope, id);
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogs,
      serverAccessLogsPrefix: 'install-assets/',
      // Built files only: the next deployment writes them again.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

/**
 * Writes what the bucket holds into `out`: the agent bundle and its ssh2 file (built now), and from `assetsDir` the
 * runtimes and image archives an operator put there (`node-<arch>.tar.gz`, `agent-image-<arch>.tar`);
 * the runtime of this machine's architecture is made from the pinned `node` package when missing.
 */
export function writeInstallAssets(out: string, assetsDir: string): string[] {
  mkdirSync(out, { recursive: true });
  execFileSync(process.execPath, ['--import', 'tsx', 'agent/build.ts', join(out, 'agent.mjs')], {
    cwd: PROJECT_ROOT,
    stdio: 'ignore',
  });
  const wanted = new Set(
    INSTALL_ARCHES.flatMap((arch) => [`node-${arch}.tar.gz`, `agent-image-${arch}.tar`]),
  );
  if (existsSync(assetsDir))
    for (const file of readdirSync(assetsDir))
      if (wanted.has(file)) copyFileSync(join(assetsDir, file), join(out, file));
  const arch = localArch();
  const node = pinnedNode();
  if (arch && node && existsSync(node.binary) && !existsSync(join(out, `node-${arch}.tar.gz`)))
    execFileSync('tar', [
      '-C',
      dirname(dirname(node.binary)),
      '-czf',
      join(out, `node-${arch}.tar.gz`),
      'bin/node',
    ]);
  return readdirSync(out).sort();
}

export interface InstallAssetsStackProps extends StackProps {
  /** The control plane stack's install bucket. */
  bucket: IBucket;
  /** Folder of operator-provided runtimes and image archives (context `installAssets`; `dist` by default). */
  assetsDir?: string;
}

/**
 * Fills the install bucket at deploy time. A stack of its own: CDK's bucket deployment is a
 * custom resource with its own function, which the control plane's template (what
 * `npm run start:stack` runs) does not carry.
 */
export class InstallAssetsStack extends Stack {
  readonly deployment: BucketDeployment;

  constructor(scope: Construct, id: string, props: InstallAssetsStackProps) {
    super(scope, id, props);
    const assetsDir = resolve(
      PROJECT_ROOT,
      props.assetsDir ?? (this.node.tryGetContext('installAssets') as string | undefined) ?? 'dist',
    );
    this.deployment = new BucketDeployment(this, 'Files', {
      sources: [
        Source.asset(join(PROJECT_ROOT, 'install'), {
          // The output is what changes (the bundle, the runtimes), not the folder it starts from.
          assetHashType: AssetHashType.OUTPUT,
          bundling: {
            // Built in this process; the image is never pulled.
            image: DockerImage.fromRegistry('node:24-alpine'),
            local: {
              tryBundle(outputDir: string) {
                writeInstallAssets(outputDir, assetsDir);
                return true;
              },
            },
          },
        }),
      ],
      destinationBucket: props.bucket,
      destinationKeyPrefix: INSTALL_ASSETS_PREFIX,
      // Runtimes and images are unzipped in the function's /tmp before they are copied.
      memoryLimit: 1024,
      ephemeralStorageSize: Size.gibibytes(4),
    });

    // CDK's own deployment function (a singleton of the stack), not this project's code.
    const handler = this.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
    if (handler?.node.defaultChild)
      Validations.of(handler.node.defaultChild).acknowledge({
        id: 'AwsSolutions-L1',
        reason: "CDK's bucket deployment function runs the Python runtime its CDK version ships.",
      });
    const role = this.deployment.handlerRole;
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: "CDK's bucket deployment function logs with the AWS managed basic execution policy.",
    });
    const reason =
      "CDK's bucket deployment function: reads its asset objects, replaces the install files of the install bucket.";
    for (const finding of [
      'Action::s3:Abort*',
      'Action::s3:DeleteObject*',
      'Action::s3:GetBucket*',
      'Action::s3:GetObject*',
      'Action::s3:List*',
      'Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*',
    ])
      Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
    // The bucket's ARN is a reference to the control plane stack, rendered only once the app is
    // prepared: acknowledged then, as cdk-nag will print it.
    this.node.addValidation({
      validate: () => {
        const arn = flattenCfnReference(this.resolve(props.bucket.bucketArn));
        Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${arn}/*]`, reason });
        return [];
      },
    });
  }
}
