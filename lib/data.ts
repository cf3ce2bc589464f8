import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { ParameterTier, StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { TABLE_KEYS } from '../functions/core/table.js';
import { VERSION } from '../functions/core/version.js';

export interface DataProps {
  /** SSM hierarchy of the deployment, e.g. `/fleet/`. */
  ssmPrefix: string;
}

/** State that outlives deployments: the table, the artifacts bucket and the SSM parameters. */
export class Data extends Construct {
  readonly table: Table;
  readonly artifacts: Bucket;
  readonly accessLogs: Bucket;
  readonly apiVersion: StringParameter;
  /** Name of the SecureString the operator creates (CloudFormation cannot create SecureStrings). */
  readonly apiKeyParameterName: string;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);

    // Built from the same TABLE_KEYS the adapters and the local runtime use.
    const str = (name: string) => ({ name, type: AttributeType.STRING });
    this.table = new Table(this, 'Table', {
      partitionKey: str(TABLE_KEYS.partitionKey),
      sortKey: str(TABLE_KEYS.sortKey),
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE_KEYS.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of TABLE_KEYS.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: str(index.partitionKey),
        sortKey: str(index.sortKey),
      });
    }

    this.accessLogs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // S3 server access logging cannot deliver to SSE-KMS buckets.
      encryption: BucketEncryption.S3_MANAGED,
      // Ownership left to CDK: it depends on whether log delivery is granted by policy or by ACL (feature flag).
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket is the server access log destination of the artifacts bucket; logging it would log the log writes.',
    });

    // Versioned: artifacts are checkpoints and outputs of GPU hours, and a buggy overwrite or delete
    // must be recoverable. Old versions expire after 30 days so the cost stays bounded.
    this.artifacts = new Bucket(this, 'Artifacts', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'artifacts/',
      lifecycleRules: [
        {
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.apiVersion = new StringParameter(this, 'ApiVersion', {
      parameterName: `${props.ssmPrefix}config/api-version`,
      stringValue: VERSION,
      description: 'Version of the deployed control plane API',
      tier: ParameterTier.STANDARD,
    });
    this.apiKeyParameterName = `${props.ssmPrefix}api-key`;
  }
}
