/**
 * The control plane's template as `cdk synth` makes it, for suites that read its roles and names,
 * and a small resolver of its intrinsics onto one suite's own emulator names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { createControlPlane } from '../../lib/app.js';
import { PROJECT_ROOT } from '../../lib/bundling.js';
import type { CfnTemplate, Resolve } from '../../local/stack/iam/roles.js';

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/**
 * Synthesizes the stack with cdk.json's context and these settings (queue prefix, schedule group,
 * SSM prefix of a suite's own). Bundling is skipped: the roles do not depend on the code.
 */
export function synthTemplate(settings: {
  queuePrefix: string;
  scheduleGroup: string;
  ssmPrefix: string;
}): CfnTemplate {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const app = new App({ context: { ...cdkJson.context, ...settings, 'aws:cdk:bundling-stacks': [] } });
  const stack = createControlPlane(app);
  return app.synth().getStackByName(stack.stackName).template as CfnTemplate;
}

/**
 * Ref, Fn::GetAtt (Arn), Fn::Join, Fn::Select, Fn::Split and the pseudo parameters, onto the names a
 * suite gives its table and buckets (queues, groups and parameters keep the template's own names).
 */
export function templateResolver(
  template: CfnTemplate,
  names: { table: string; bucket: string; region: string; account: string; sqsEndpoint: string },
): Resolve {
  const resources = template.Resources as Resources;
  const { region, account } = names;
  const physical = (id: string): string => {
    const r = resources[id];
    const p = r?.Properties ?? {};
    switch (r?.Type) {
      case 'AWS::DynamoDB::Table':
        return names.table;
      case 'AWS::S3::Bucket':
        return id.startsWith('DataArtifacts')
          ? names.bucket
          : `${names.bucket}-${id.toLowerCase().slice(0, 20)}`;
      case 'AWS::SQS::Queue':
        return `${names.sqsEndpoint}/${account}/${String(p.QueueName)}`;
      case 'AWS::Scheduler::ScheduleGroup':
        return String(p.Name);
      default:
        return id;
    }
  };
  const arnOf = (id: string): string => {
    const r = resources[id];
    const p = r?.Properties ?? {};
    switch (r?.Type) {
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${region}:${account}:table/${names.table}`;
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${physical(id)}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${region}:${account}:${String(p.QueueName)}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${account}:role/${id}`;
      case 'AWS::Scheduler::ScheduleGroup':
        return `arn:aws:scheduler:${region}:${account}:schedule-group/${String(p.Name)}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${region}:${account}:log-group:${id}:*`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${region}:${account}:function:${id}`;
      default:
        throw new Error(`templateResolver: no ARN for ${id} (${r?.Type})`);
    }
  };
  const pseudo: Record<string, string> = {
    'AWS::Region': region,
    'AWS::AccountId': account,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'GpuFleetControlPlane',
  };
  const resolve: Resolve = (value) => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!value || typeof value !== 'object') return value;
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      const [k] = keys as [string];
      const v = o[k];
      if (k === 'Ref') return pseudo[v as string] ?? physical(v as string);
      if (k === 'Fn::GetAtt') {
        const [id, attr] = v as [string, string];
        if (attr !== 'Arn') throw new Error(`templateResolver: Fn::GetAtt ${id}.${attr}`);
        return arnOf(id);
      }
      if (k === 'Fn::Join') {
        const [sep, parts] = v as [string, unknown[]];
        return (resolve(parts) as unknown[]).map(String).join(sep);
      }
      if (k === 'Fn::Select') {
        const [i, list] = v as [number, unknown];
        return (resolve(list) as unknown[])[Number(i)];
      }
      if (k === 'Fn::Split') {
        const [sep, s] = v as [string, unknown];
        return String(resolve(s)).split(sep);
      }
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolve(v)]));
  };
  return resolve;
}
