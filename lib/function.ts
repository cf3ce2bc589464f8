import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  type CfnFunction,
  type IFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LOCK_FILE, NODE_OPTIONS, PROJECT_ROOT, nodejsBundling } from './bundling.js';
import { LAMBDA_MEMORY_MB, LAMBDA_SYSTEM_LOG_LEVEL } from './lambda-settings.js';
import { EMF_NAMESPACE } from '../functions/observability/counters.js';

export const SERVICE_NAME = 'gpu-fleet-control-plane';
export const METRICS_NAMESPACE = EMF_NAMESPACE;

/** API Gateway gives up on an integration after 29 s: an HTTP function may not run longer. */
export const HTTP_TIMEOUT = Duration.seconds(29);

export interface ControlPlaneFunctionProps {
  /** Entry file, relative to the repository root. */
  entry: string;
  description: string;
  /** Settings the function reads through loadConfig (functions/core/config.ts). */
  environment: Record<string, string>;
  logLevel: string;
  logRetention: RetentionDays;
  timeout?: Duration;
  memorySize?: number;
  commandHooks?: ICommandHooks;
}

/**
 * One Lambda function with the defaults every function of the control plane shares: Node 24 on
 * arm64, an ESM bundle, its own log group with retention, and its own role that starts with
 * nothing but writing to that log group (grants are added by the stack, per resource).
 */
export class ControlPlaneFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ControlPlaneFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Operational logs that expire anyway; a retained group would outlive the stack for nothing.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Our own role instead of AWSLambdaBasicExecutionRole: that managed policy may write to any log group.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (Lambda execution role)`,
    });
    this.logGroup.grantWrite(this.role);

    this.fn = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: LOCK_FILE,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? LAMBDA_MEMORY_MB,
      timeout: props.timeout ?? HTTP_TIMEOUT,
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      // JSON format so Lambda filters by level: its own START/REPORT lines dropped (lambda-settings.ts),
      // the application's lines kept from the deployment's log level up (Powertools writes JSON with a level).
      loggingFormat: LoggingFormat.JSON,
      systemLogLevelV2: SystemLogLevel[LAMBDA_SYSTEM_LOG_LEVEL],
      applicationLogLevelV2: ApplicationLogLevel[props.logLevel as keyof typeof ApplicationLogLevel],
      bundling: nodejsBundling(props.commandHooks),
      environment: {
        ...props.environment,
        LOG_LEVEL: props.logLevel,
        SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        NODE_OPTIONS,
      },
    });
    // Active X-Ray tracing, set on the resource itself: CDK's \`tracing\` prop would also add its own
    // xray grant to the role; the grant is the 'trace' capability (lib/permissions.ts) instead.
    (this.fn.node.defaultChild as CfnFunction).tracingConfig = { mode: 'Active' };
    // The role must carry its log permissions before the function exists, or early logs are lost.
    this.fn.node.addDependency(this.role);
  }
}

/** Reserves (and caps) concurrency for the named functions (the `reservedConcurrency` setting). */
export function reserveConcurrency(
  functions: Record<string, { fn: IFunction }>,
  reserved: Record<string, number>,
): void {
  for (const [name, count] of Object.entries(reserved)) {
    const f = functions[name];
    if (!f) throw new Error(`reservedConcurrency: no function named ${name}`);
    (f.fn.node.defaultChild as CfnFunction).reservedConcurrentExecutions = count;
  }
}
