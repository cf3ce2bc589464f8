import { Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { CfnSchedule, CfnScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EVENTS_QUEUE } from '../functions/core/events.js';
import { dlqName } from '../functions/ports/queue.js';
import { APP_SCHEDULES } from '../functions/schedules.js';

export interface MessagingProps {
  queuePrefix: string;
  scheduleGroup: string;
  /** The events function's timeout: a message must stay hidden while a batch runs. */
  consumerTimeout: Duration;
}

/** The events queue, its dead-letter queue, the schedule group and the role Scheduler delivers with. */
export class Messaging extends Construct {
  readonly events: Queue;
  readonly deadLetters: Queue;
  readonly scheduleGroup: CfnScheduleGroup;
  readonly schedulerRole: Role;

  constructor(scope: Construct, id: string, props: MessagingProps) {
    super(scope, id);
    const { account, region, partition } = Stack.of(this);

    // Names follow SqsQueue.physicalName (QUEUE_PREFIX + logical name): the functions find the
    // queues by name, as they find the agents' queues they create at runtime.
    this.deadLetters = new Queue(this, 'EventsDlq', {
      queueName: `${props.queuePrefix}${dlqName(EVENTS_QUEUE)}`,
      retentionPeriod: Duration.days(14), // the maximum: dead letters wait for a human
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.events = new Queue(this, 'Events', {
      queueName: `${props.queuePrefix}${EVENTS_QUEUE}`,
      // AWS's guidance for Lambda consumers: six times the function timeout, so retries of a
      // throttled batch do not make messages visible again mid-run.
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetters, maxReceiveCount: 5 },
    });

    this.scheduleGroup = new CfnScheduleGroup(this, 'ScheduleGroup', { name: props.scheduleGroup });

    // Scheduler assumes this role to deliver firings; only for schedules of our group in our account.
    this.schedulerRole = new Role(this, 'SchedulerRole', {
      description:
        'EventBridge Scheduler delivers control-plane schedule firings to the events queue or the events function',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnLike: {
            'aws:SourceArn': `arn:${partition}:scheduler:${region}:${account}:schedule/${props.scheduleGroup}/*`,
          },
        },
      }),
    });
    this.events.grantSendMessages(this.schedulerRole);
  }

  /**
   * The app's own sweeps (schedules of jobs are created at runtime by the functions). A `direct`
   * one (the minute schedule) invokes the events function itself, no SQS message a firing: the
   * role may invoke that function only; Scheduler retries a failed delivery for up to a minute
   * (a later firing supersedes it), then leaves it in the events dead-letter queue. What the
   * function then fails, Lambda retries twice and sends to the same queue (lib/stack.ts).
   */
  addAppSchedules(eventsFunction: IFunction): void {
    const group = this.scheduleGroup.name!;
    const direct = APP_SCHEDULES.some((s) => s.direct);
    if (direct) {
      this.schedulerRole.addToPolicy(
        new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [eventsFunction.functionArn] }),
      );
      this.deadLetters.grantSendMessages(this.schedulerRole);
    }
    for (const spec of APP_SCHEDULES) {
      const target: CfnSchedule.TargetProperty = spec.direct
        ? {
            arn: eventsFunction.functionArn,
            roleArn: this.schedulerRole.roleArn,
            input: spec.payload,
            retryPolicy: { maximumEventAgeInSeconds: 60, maximumRetryAttempts: 2 },
            deadLetterConfig: { arn: this.deadLetters.queueArn },
          }
        : { arn: this.events.queueArn, roleArn: this.schedulerRole.roleArn, input: spec.payload };
      const schedule = new CfnSchedule(this, `Schedule-${spec.name}`, {
        name: spec.name,
        groupName: group,
        description: spec.description,
        scheduleExpression: spec.expression,
        scheduleExpressionTimezone: spec.timezone ?? 'UTC',
        flexibleTimeWindow: { mode: 'OFF' },
        state: 'ENABLED',
        target,
      });
      schedule.addDependency(this.scheduleGroup);
    }
  }
}
