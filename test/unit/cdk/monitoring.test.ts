import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { EMF_NAMESPACE } from '../../../functions/observability/counters.js';
import { SERVICE_NAME } from '../../../lib/function.js';
import { Monitoring, type MonitoringProps } from '../../../lib/monitoring.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The Monitoring construct over plain stand-ins of the stack's resources (no bundling: fast). */
function synth(extra: Partial<MonitoringProps> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-monitoring-'));
  dirs.push(outdir);
  const app = new App({ outdir });
  const stack = new Stack(app, 'MonitoringTest');
  // Stand-ins clean under cdk-nag themselves, so the synth's report is the construct's.
  const fn = (id: string) => ({
    fn: new LambdaFunction(stack, id, {
      runtime: Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => ({})'),
      role: new Role(stack, `${id}Role`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') }),
    }),
  });
  const queue = { enforceSSL: true, encryption: QueueEncryption.SQS_MANAGED };
  const deadLetters = new Queue(stack, 'Dlq', queue);
  const monitoring = new Monitoring(stack, 'Monitoring', {
    functions: { agent: fn('Agent'), events: fn('EventsFunction') },
    api: { api: new HttpApi(stack, 'Api', { createDefaultStage: false }) },
    messaging: {
      events: new Queue(stack, 'Events', {
        ...queue,
        deadLetterQueue: { queue: deadLetters, maxReceiveCount: 5 },
      }),
      deadLetters,
    },
    data: {
      table: new Table(stack, 'Table', {
        partitionKey: { name: 'pk', type: AttributeType.STRING },
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      }),
    },
    offlineNodesThreshold: 2,
    eventsQueueAgeSeconds: 300,
    ...extra,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
    pluginReports: { violations: { ruleName: string }[] }[];
  };
  const own = report.pluginReports.flatMap((r) => r.violations).map((v) => v.ruleName);
  return { template: Template.fromStack(stack), monitoring, own };
}

type Alarm = { Properties: Record<string, unknown> };

describe('Monitoring (alarms and the fleet dashboard)', () => {
  const { template, own } = synth();
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Alarm[];
  const byMetric = (name: string) => alarms.filter((a) => a.Properties['MetricName'] === name);

  it('alarms on Lambda errors and throttles of every function', () => {
    expect(byMetric('Errors')).toHaveLength(2);
    expect(byMetric('Throttles')).toHaveLength(2);
    for (const a of [...byMetric('Errors'), ...byMetric('Throttles')])
      expect(a.Properties).toMatchObject({
        Namespace: 'AWS/Lambda',
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
      });
  });

  it('alarms on the dead letters, the events queue age and nodes offline above the setting', () => {
    expect(byMetric('ApproximateNumberOfMessagesVisible')[0]!.Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      Statistic: 'Maximum',
      Threshold: 0,
    });
    expect(byMetric('ApproximateAgeOfOldestMessage')[0]!.Properties).toMatchObject({ Threshold: 300 });
    expect(byMetric('NodesOffline')[0]!.Properties).toMatchObject({
      Namespace: EMF_NAMESPACE,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME }],
      Threshold: 2,
      EvaluationPeriods: 3,
    });
    // No topic configured: no actions.
    expect(alarms.every((a) => a.Properties['AlarmActions'] === undefined)).toBe(true);
  });

  it('alarms on the API 5xx rate as a share of requests', () => {
    const rate = alarms.find((a) => Array.isArray(a.Properties['Metrics']))!;
    expect(rate.Properties).toMatchObject({ Threshold: 5, EvaluationPeriods: 3, DatapointsToAlarm: 2 });
    const metrics = rate.Properties['Metrics'] as {
      Expression?: string;
      MetricStat?: { Metric: { MetricName: string } };
    }[];
    expect(metrics.find((m) => m.Expression)?.Expression).toBe(
      'IF(requests > 0, 100 * errors / requests, 0)',
    );
    expect(metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : [])).sort()).toEqual([
      '5xx',
      'Count',
    ]);
    expect(alarms).toHaveLength(2 * 2 + 4);
  });

  it('draws the fleet dashboard from the EMF metrics and the services', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as {
      Properties: { DashboardBody: unknown };
    }[];
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]!.Properties.DashboardBody);
    for (const metric of [
      'NodesOnline',
      'NodesOffline',
      'GpuUtilization',
      'TaskQueueDepth',
      'TaskLatency',
      'CommandLatency',
      'HttpRequests',
      'Invocations',
      'ConsumedWriteCapacityUnits',
    ])
      expect(body, metric).toContain(metric);
  });

  it('has no cdk-nag finding of its own', () => {
    expect(own).toEqual([]);
  });
});

describe('Monitoring notifications', () => {
  it('creates an encrypted, TLS-only topic for an address, and every alarm notifies it on alarm and OK', () => {
    const { template, own } = synth({ alarmEmail: 'ops@example.com' });
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Alarm[];
    for (const a of alarms) {
      expect(a.Properties['AlarmActions']).toHaveLength(1);
      expect(a.Properties['OKActions']).toHaveLength(1);
    }
    expect(own).toEqual([]);
  });

  it('notifies an existing topic by its ARN without creating one', () => {
    const arn = 'arn:aws:sns:us-east-1:123456789012:ops';
    const { template } = synth({ alarmTopicArn: arn });
    template.resourceCountIs('AWS::SNS::Topic', 0);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Alarm[];
    expect(alarms.every((a) => JSON.stringify(a.Properties['AlarmActions']) === JSON.stringify([arn]))).toBe(
      true,
    );
  });
});
