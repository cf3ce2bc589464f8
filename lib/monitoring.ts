import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Alias } from 'aws-cdk-lib/aws-kms';
import { Topic, type ITopic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { EMF_NAMESPACE } from '../functions/observability/counters.js';
import type { Api } from './api.js';
import type { Data } from './data.js';
import { SERVICE_NAME, type ControlPlaneFunction } from './function.js';
import type { Messaging } from './messaging.js';

export interface MonitoringProps {
  functions: Record<string, Pick<ControlPlaneFunction, 'fn'>>;
  api: Pick<Api, 'api'>;
  messaging: Pick<Messaging, 'events' | 'deadLetters'>;
  data: Pick<Data, 'table'>;
  /** Alarm when more nodes than this are offline (the nodes sweep's NodesOffline, every minute). */
  offlineNodesThreshold: number;
  /** Alarm when the oldest event waits longer than this. */
  eventsQueueAgeSeconds: number;
  /** An existing SNS topic to notify (alarm and OK); takes precedence over alarmEmail. */
  alarmTopicArn?: string;
  /** Creates an encrypted topic with this address subscribed. */
  alarmEmail?: string;
}

const FIVE_MINUTES = Duration.minutes(5);

/** The EMF metrics the functions write (functions/observability/counters.ts), with Powertools' service dimension. */
export const fleetMetric = (metricName: string, statistic = 'Sum', period = FIVE_MINUTES) =>
  new Metric({
    namespace: EMF_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME },
    statistic,
    period,
  });

/**
 * CloudWatch alarms and the fleet dashboard. Alarms: API 5xx rate, Lambda errors and throttles
 * per function, events dead letters, events queue age, nodes offline; each notifies the SNS topic
 * when one is configured. The dashboard reads the EMF metrics (nodes, GPU utilisation, queue
 * depth, task and command latency, requests) and AWS's own (API, Lambda, SQS, DynamoDB).
 */
export class Monitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly topic?: ITopic;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    if (props.alarmTopicArn) this.topic = Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
    else if (props.alarmEmail) {
      const topic = new Topic(this, 'AlarmTopic', {
        displayName: `${Stack.of(this).stackName} alarms`,
        masterKey: Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
        enforceSSL: true,
      });
      topic.addSubscription(new EmailSubscription(props.alarmEmail));
      this.topic = topic;
    }

    const alarm = (
      name: string,
      metric: IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
      datapointsToAlarm = evaluationPeriods,
    ) => {
      const a = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods,
        datapointsToAlarm,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (this.topic) {
        a.addAlarmAction(new SnsAction(this.topic));
        a.addOkAction(new SnsAction(this.topic));
      }
      this.alarms.push(a);
      return a;
    };

    const httpApi = props.api.api;
    const requests = httpApi.metricCount({ period: FIVE_MINUTES });
    const serverErrors = httpApi.metricServerError({ period: FIVE_MINUTES });
    alarm(
      'Api5xxRate',
      new MathExpression({
        expression: 'IF(requests > 0, 100 * errors / requests, 0)',
        usingMetrics: { requests, errors: serverErrors },
        period: FIVE_MINUTES,
        label: 'API 5xx (% of requests)',
      }),
      5,
      'More than 5 % of API requests answered 5xx in 2 of the last 3 five-minute periods.',
      3,
      2,
    );

    for (const [name, f] of Object.entries(props.functions)) {
      const title = name[0]!.toUpperCase() + name.slice(1);
      alarm(
        `${title}Errors`,
        f.fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
        0,
        `The ${name} function failed (an error or timeout) in the last five minutes.`,
      );
      alarm(
        `${title}Throttles`,
        f.fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }),
        0,
        `The ${name} function was throttled (concurrency limit) in the last five minutes.`,
      );
    }

    alarm(
      'EventsDeadLetters',
      props.messaging.deadLetters.metricApproximateNumberOfMessagesVisible({
        period: FIVE_MINUTES,
        statistic: 'Maximum',
      }),
      0,
      'Events failed five times and wait in the dead-letter queue for a person.',
    );
    alarm(
      'EventsQueueAge',
      props.messaging.events.metricApproximateAgeOfOldestMessage({
        period: FIVE_MINUTES,
        statistic: 'Maximum',
      }),
      props.eventsQueueAgeSeconds,
      `The oldest event has waited more than ${props.eventsQueueAgeSeconds} s: the events worker is behind or failing.`,
    );
    alarm(
      'NodesOffline',
      fleetMetric('NodesOffline', 'Maximum', Duration.minutes(1)),
      props.offlineNodesThreshold,
      `More than ${props.offlineNodesThreshold} nodes offline (no heartbeat) for 3 minutes in a row.`,
      3,
    );

    const fns = Object.entries(props.functions);
    const table = props.data.table;
    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new TextWidget({
            markdown: `# GPU fleet\nNodes, GPUs and tasks from the control plane's EMF metrics (namespace \`${EMF_NAMESPACE}\`); requests and cost drivers from API Gateway, Lambda, SQS and DynamoDB.`,
            width: 24,
            height: 2,
          }),
        ],
        [
          new SingleValueWidget({
            title: 'Nodes',
            metrics: [
              fleetMetric('NodesOnline', 'Maximum', Duration.minutes(1)),
              fleetMetric('NodesOffline', 'Maximum', Duration.minutes(1)),
            ],
            width: 6,
          }),
          new GraphWidget({
            title: 'Nodes online / offline',
            left: [
              fleetMetric('NodesOnline', 'Maximum', Duration.minutes(1)),
              fleetMetric('NodesOffline', 'Maximum', Duration.minutes(1)),
            ],
            width: 9,
          }),
          new GraphWidget({
            title: 'GPU utilisation (mean of online GPUs, %)',
            left: [fleetMetric('GpuUtilization', 'Average', Duration.minutes(1))],
            leftYAxis: { min: 0, max: 100 },
            width: 9,
          }),
        ],
        [
          new GraphWidget({
            title: 'Queue depth',
            left: [
              fleetMetric('TaskQueueDepth', 'Maximum', Duration.minutes(1)),
              props.messaging.events.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(1),
                label: 'Events queue',
              }),
              props.messaging.deadLetters.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(1),
                label: 'Events DLQ',
              }),
            ],
            right: [
              props.messaging.events.metricApproximateAgeOfOldestMessage({
                period: Duration.minutes(1),
                label: 'Oldest event (s)',
              }),
            ],
            width: 8,
          }),
          new GraphWidget({
            title: 'Task latency, submit → outcome (s)',
            left: ['p50', 'p90', 'p99'].map((s) =>
              fleetMetric('TaskLatency', s).with({ label: `Task ${s}` }),
            ),
            right: [fleetMetric('TasksCompleted'), fleetMetric('TasksFailed')],
            width: 8,
          }),
          new GraphWidget({
            title: 'Command latency, issue → agent result (s)',
            left: ['p50', 'p90', 'p99'].map((s) =>
              fleetMetric('CommandLatency', s).with({ label: `Command ${s}` }),
            ),
            right: [
              fleetMetric('CommandsSucceeded'),
              fleetMetric('CommandsFailed'),
              fleetMetric('Placements'),
            ],
            width: 8,
          }),
        ],
        [
          new GraphWidget({
            title: 'API requests (cost driver: $1/M) and errors',
            left: [requests, fleetMetric('HttpRequests')],
            right: [fleetMetric('Http4xx'), fleetMetric('Http5xx')],
            width: 8,
          }),
          new GraphWidget({
            title: 'Lambda invocations by function',
            left: fns.map(([name, f]) => f.fn.metricInvocations({ period: FIVE_MINUTES, label: name })),
            width: 8,
          }),
          new GraphWidget({
            title: 'DynamoDB consumed capacity',
            left: [
              table.metricConsumedWriteCapacityUnits({ period: FIVE_MINUTES, label: 'Write units' }),
              table.metricConsumedReadCapacityUnits({ period: FIVE_MINUTES, label: 'Read units' }),
            ],
            width: 8,
          }),
        ],
        [new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })],
      ],
    });
  }
}
