import { describe, expect, it } from 'vitest';
import { createResolver, UnresolvableError, type Template } from '../../../local/stack/resolver.js';
import { batchItemFailures } from '../../../local/stack/event-sources.js';

const template: Template = {
  Parameters: { Stage: { Type: 'String', Default: 'prod' }, NoDefault: { Type: 'String' } },
  Resources: {
    Queue: { Type: 'AWS::SQS::Queue' },
    Table: { Type: 'AWS::DynamoDB::Table' },
  },
  Conditions: { IsProd: { 'Fn::Equals': [{ Ref: 'Stage' }, 'prod'] } },
};

const physical = {
  Queue: {
    ref: 'http://127.0.0.1:4566/123456789012/p-events',
    arn: 'arn:aws:sqs:eu-west-1:123456789012:p-events',
    attributes: { QueueName: 'p-events' },
  },
  Table: { ref: 'p-table', arn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/p-table' },
};

const r = createResolver(template, physical, { region: 'eu-west-1', accountId: '123456789012' });

describe('createResolver: CloudFormation intrinsics over physical resources', () => {
  it('resolves Ref of resources, parameters with a default, and the pseudo parameters', () => {
    expect(r.resolve({ Ref: 'Table' })).toBe('p-table');
    expect(r.resolve({ Ref: 'Stage' })).toBe('prod');
    expect(
      r.resolve(
        ['AWS::Region', 'AWS::AccountId', 'AWS::Partition', 'AWS::URLSuffix'].map((p) => ({ Ref: p })),
      ),
    ).toEqual(['eu-west-1', '123456789012', 'aws', 'amazonaws.com']);
    expect(createResolver(template, physical, { region: 'cn-north-1', accountId: '1' }).pseudo).toMatchObject(
      {
        partition: 'aws-cn',
        urlSuffix: 'amazonaws.com.cn',
      },
    );
  });

  it('resolves Fn::GetAtt in its list and dotted forms, Arn from the ARN', () => {
    expect(r.resolve({ 'Fn::GetAtt': ['Queue', 'Arn'] })).toBe(physical.Queue.arn);
    expect(r.resolve({ 'Fn::GetAtt': 'Queue.QueueName' })).toBe('p-events');
    expect(r.resolve({ 'Fn::GetAtt': ['Table', 'Arn'] })).toBe(physical.Table.arn);
  });

  it('resolves Fn::Join, Fn::Select and Fn::Split, nested', () => {
    expect(
      r.resolve({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::', { Ref: 'Table' }, '/*']] }),
    ).toBe('arn:aws:s3:::p-table/*');
    expect(r.resolve({ 'Fn::Select': [1, { 'Fn::Split': [':', { 'Fn::GetAtt': ['Queue', 'Arn'] }] }] })).toBe(
      'aws',
    );
  });

  it('resolves Fn::Sub with pseudo parameters, Ref and GetAtt names, its variable map, and ${!Literal}', () => {
    expect(
      r.resolve({
        'Fn::Sub': 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Table}',
      }),
    ).toBe(physical.Table.arn);
    expect(
      r.resolve({ 'Fn::Sub': ['${Queue.QueueName}/${Name}/${!Literal}', { Name: { Ref: 'Stage' } }] }),
    ).toBe('p-events/prod/${Literal}');
  });

  it('resolves Fn::If on the template conditions and drops AWS::NoValue', () => {
    expect(
      r.resolve({
        A: { 'Fn::If': ['IsProd', 'yes', 'no'] },
        B: { Ref: 'AWS::NoValue' },
        C: [1, { Ref: 'AWS::NoValue' }],
      }),
    ).toEqual({ A: 'yes', C: [1] });
  });

  it('throws, naming what is missing, for an unknown resource, attribute or parameter without a value', () => {
    expect(() => r.resolve({ Ref: 'Nope' })).toThrow(UnresolvableError);
    expect(() => r.resolve({ Ref: 'NoDefault' })).toThrow(/NoDefault/);
    expect(() => r.resolve({ 'Fn::GetAtt': ['Table', 'StreamArn'] })).toThrow(/Table\.StreamArn/);
    expect(() => r.resolveString({ 'Fn::Split': [',', 'a,b'] })).toThrow(UnresolvableError);
  });
});

describe('batchItemFailures: a ReportBatchItemFailures response as Lambda reads it', () => {
  const records = ['m1', 'm2'].map((messageId) => ({ messageId }) as never);
  it('names the failed items; an empty or null list fails none', () => {
    expect(batchItemFailures('{"batchItemFailures":[{"itemIdentifier":"m2"}]}', records)).toEqual(
      new Set(['m2']),
    );
    expect(batchItemFailures('{"batchItemFailures":[]}', records)).toEqual(new Set());
    expect(batchItemFailures('null', records)).toEqual(new Set());
  });
  it('fails the whole batch for an unknown or empty id, or a malformed list', () => {
    expect(batchItemFailures('{"batchItemFailures":[{"itemIdentifier":"m9"}]}', records)).toBe('all');
    expect(batchItemFailures('{"batchItemFailures":[{"itemIdentifier":""}]}', records)).toBe('all');
    expect(batchItemFailures('{"batchItemFailures":"m1"}', records)).toBe('all');
  });
});
