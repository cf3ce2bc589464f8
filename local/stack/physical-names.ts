/**
 * The physical names CloudFormation would give a template's resources (from the deployment's prefix),
 * with the ARNs and attributes the resolver answers `Fn::GetAtt` with.
 */
import { createHash } from 'node:crypto';
import type { PhysicalResource, Template } from './resolver.js';

export const DEFAULT_ACCOUNT = '123456789012';

/** The ids API Gateway makes: 10 lowercase letters and digits; here derived from the start's prefix. */
export const apiIdOf = (prefix: string, logicalId: string) =>
  createHash('sha256').update(`${prefix}/${logicalId}`).digest('hex').slice(0, 10);

const clip = (name: string, max: number) => (name.length <= max ? name : name.slice(0, max));

/**
 * What `Ref` and `Fn::GetAtt` give for each resource once deployed. Names the template sets are
 * kept (the per-start prefix is in them through the synth context); generated ones get the prefix.
 */
export function physicalNames(
  template: Template,
  prefix: string,
  region: string,
  accountId: string,
  partition = 'aws',
  urlSuffix = 'amazonaws.com',
): Record<string, PhysicalResource> {
  const physical: Record<string, PhysicalResource> = {};
  const literal = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const arn = (service: string, resource: string, withRegion = true, withAccount = true) =>
    `arn:${partition}:${service}:${withRegion ? region : ''}:${withAccount ? accountId : ''}:${resource}`;
  for (const [id, resource] of Object.entries(template.Resources)) {
    const p = resource.Properties ?? {};
    const generated = `${prefix}-${id}`;
    switch (resource.Type) {
      case 'AWS::SQS::Queue': {
        const name = literal(p.QueueName) ?? clip(generated, 80);
        const url = `${'https'}://sqs.${region}.${urlSuffix}/${accountId}/${name}`;
        physical[id] = { ref: url, arn: arn('sqs', name), attributes: { QueueName: name, QueueUrl: url } };
        break;
      }
      case 'AWS::DynamoDB::Table': {
        const name = literal(p.TableName) ?? clip(generated, 255);
        physical[id] = { ref: name, arn: arn('dynamodb', `table/${name}`) };
        break;
      }
      case 'AWS::S3::Bucket': {
        const name = literal(p.BucketName) ?? clip(generated.toLowerCase(), 63).replace(/-+$/, '');
        physical[id] = {
          ref: name,
          arn: `arn:${partition}:s3:::${name}`,
          attributes: {
            DomainName: `${name}.s3.${urlSuffix}`,
            RegionalDomainName: `${name}.s3.${region}.${urlSuffix}`,
            WebsiteURL: `http://${name}.s3-website-${region}.${urlSuffix}`,
          },
        };
        break;
      }
      case 'AWS::SSM::Parameter': {
        const name = literal(p.Name) ?? `/${generated}`;
        physical[id] = {
          ref: name,
          arn: arn('ssm', `parameter/${name.replace(/^\//, '')}`),
          attributes: { Type: String(p.Type ?? 'String') },
        };
        break;
      }
      case 'AWS::Scheduler::ScheduleGroup': {
        const name = literal(p.Name) ?? clip(generated, 64);
        physical[id] = { ref: name, arn: arn('scheduler', `schedule-group/${name}`) };
        break;
      }
      case 'AWS::Scheduler::Schedule': {
        const name = literal(p.Name) ?? clip(generated, 64);
        const group = literal(p.GroupName) ?? 'default';
        physical[id] = { ref: name, arn: arn('scheduler', `schedule/${group}/${name}`) };
        break;
      }
      case 'AWS::IAM::Role': {
        const name = literal(p.RoleName) ?? clip(generated, 64);
        physical[id] = {
          ref: name,
          arn: arn('iam', `role/${name}`, false),
          attributes: { RoleId: `AROA${apiIdOf(prefix, id).toUpperCase()}` },
        };
        break;
      }
      case 'AWS::Lambda::Function': {
        const name = literal(p.FunctionName) ?? clip(generated, 64);
        physical[id] = { ref: name, arn: arn('lambda', `function:${name}`) };
        break;
      }
      case 'AWS::Logs::LogGroup': {
        const name = literal(p.LogGroupName) ?? generated;
        physical[id] = { ref: name, arn: arn('logs', `log-group:${name}:*`) };
        break;
      }
      case 'AWS::ApiGatewayV2::Api': {
        const apiId = apiIdOf(prefix, id);
        const scheme = p.ProtocolType === 'WEBSOCKET' ? 'wss' : 'https';
        physical[id] = {
          ref: apiId,
          attributes: {
            ApiId: apiId,
            ApiEndpoint: `${scheme}://${apiId}.execute-api.${region}.${urlSuffix}`,
          },
        };
        break;
      }
      case 'AWS::ApiGatewayV2::Stage':
        physical[id] = { ref: literal(p.StageName) ?? '$default' };
        break;
      default:
        physical[id] = { ref: apiIdOf(prefix, id) };
    }
  }
  return physical;
}
