/**
 * What makes a stack's functions run besides its APIs: the SQS event source mappings of its template,
 * polled as Lambda polls them, and its EventBridge Scheduler schedules, fired by a driver (the
 * emulator only stores schedules).
 */
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { EventBridgeScheduler } from '../../functions/adapters/eventbridge-scheduler.js';
import { ScheduleDriver } from '../schedule-driver.js';
import { SqsEventSource } from './event-sources.js';
import type { InvokeResult } from './lambda.js';
import type { PhysicalResource, Resolver, TemplateResource } from './resolver.js';

export const byType = (resources: Record<string, TemplateResource>, type: string) =>
  Object.entries(resources).filter(([, r]) => r.Type === type);

export interface TriggerContext {
  resources: Record<string, TemplateResource>;
  physical: Record<string, PhysicalResource>;
  resolver: Resolver;
  region: string;
  endpoint: string;
  /** The function an ARN, a Lambda invocation URI or a name points at. */
  functionOf: (value: unknown) => string | undefined;
  invoke: (id: string, event: unknown) => Promise<InvokeResult>;
  log: (line: string) => void;
}

/** Starts polling each enabled SQS event source mapping of the stack's own queues. */
export function startEventSources(ctx: TriggerContext): SqsEventSource[] {
  const { resources, physical, resolver, region, endpoint, functionOf, invoke, log } = ctx;
  const eventSources: SqsEventSource[] = [];
  for (const [, resource] of byType(resources, 'AWS::Lambda::EventSourceMapping')) {
    const p = resolver.resolve<Record<string, unknown>>(resource.Properties ?? {});
    if (p.Enabled === false) continue;
    const sourceArn = String(p.EventSourceArn ?? '');
    const queueId = Object.keys(physical).find(
      (id) => physical[id]!.arn === sourceArn && resources[id]!.Type === 'AWS::SQS::Queue',
    );
    const functionId = functionOf(p.FunctionName);
    if (!queueId || !functionId) {
      log(`event source ${sourceArn} → ${String(p.FunctionName)}: only SQS queues of this stack are polled`);
      continue;
    }
    const source = new SqsEventSource({
      functionLogicalId: functionId,
      queueUrl: physical[queueId]!.ref,
      queueArn: sourceArn,
      region,
      endpoint,
      batchSize: Number(p.BatchSize ?? 10),
      maximumBatchingWindowSeconds: Number(p.MaximumBatchingWindowInSeconds ?? 0),
      reportBatchItemFailures: ((p.FunctionResponseTypes as string[] | undefined) ?? []).includes(
        'ReportBatchItemFailures',
      ),
      concurrency: Number(
        (p.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ?? 2,
      ),
      invoke,
      onError: (error) => log(`event source ${sourceArn}: ${String(error)}`),
    });
    source.start();
    eventSources.push(source);
  }
  return eventSources;
}

/**
 * Fires the schedules of `groups` into their targets, as EventBridge Scheduler does: an SQS queue
 * gets the payload as a message, a function of the stack is invoked with it (asynchronously on AWS;
 * a failed invocation is logged here, Lambda's retries are not played).
 */
export function startScheduleDriver(
  groups: string[],
  options: { region: string; endpoint: string; refreshMs?: number | undefined } & Pick<
    TriggerContext,
    'functionOf' | 'invoke' | 'log'
  >,
): { driver: ScheduleDriver; stop: () => void } {
  const { region, endpoint, functionOf, invoke, log } = options;
  const sqs = new SQSClient({ region, endpoint });
  const schedulers = groups.map(
    (group) =>
      new EventBridgeScheduler({
        AWS_REGION: region,
        AWS_ENDPOINT_URL: endpoint,
        QUEUE_PREFIX: '',
        SCHEDULE_GROUP: group,
        SCHEDULE_TARGET_ARN: undefined,
        SCHEDULE_ROLE_ARN: undefined,
      }),
  );
  const urls = new Map<string, string>();
  const driver = new ScheduleDriver({
    scheduler: {
      list: async () =>
        (await Promise.all(schedulers.map((s) => s.list())))
          .flat()
          .map((s) => ({ ...s, name: `${s.group}/${s.name}` })),
      upsert: () => Promise.reject(new Error('read-only')),
      get: () => Promise.reject(new Error('read-only')),
      delete: () => Promise.reject(new Error('read-only')),
      ping: () => Promise.resolve(),
    },
    refreshMs: options.refreshMs,
    fire: async (schedule) => {
      const arn = schedule.target;
      const [, , service, , account, name] = arn.split(':');
      const fn = service === 'lambda' ? functionOf(arn) : undefined;
      if (fn) {
        const result = await invoke(fn, JSON.parse(schedule.payload));
        if (!result.ok) log(`schedule ${schedule.name} → ${fn}: ${result.error.errorMessage}`);
        return;
      }
      if (service !== 'sqs' || !name)
        throw new Error(
          `schedule ${schedule.name}: target ${arn} is neither an SQS queue nor a function of the stack`,
        );
      let url = urls.get(arn);
      if (!url) {
        url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account })))
          .QueueUrl!;
        urls.set(arn, url);
      }
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: schedule.payload }));
    },
  });
  driver.start();
  return {
    driver,
    stop: () => {
      driver.stop();
      sqs.destroy();
    },
  };
}
