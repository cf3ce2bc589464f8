import type { CreateScheduleInput, GetScheduleOutput, SchedulerClient } from '@aws-sdk/client-scheduler';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Config } from '../core/config.js';
import type { ScheduleSpec, Scheduler, StoredSchedule } from '../ports/scheduler.js';
import { schedulerClient, sqsClient } from './aws-clients.js';
import { SqsQueue } from './sqs-queue.js';

/** Loaded on first use with its client (see aws-clients.ts). */
type Sdk = typeof import('@aws-sdk/client-scheduler');

/** Logical name of the queue firings land in when SCHEDULE_TARGET_ARN is not configured. */
export const EVENTS_QUEUE = 'events';
/**
 * Used only when SCHEDULE_ROLE_ARN is unset, i.e. against an emulator: moto and LocalStack store the
 * role without assuming it. Real AWS rejects a role it cannot assume, so deployments always set it.
 */
export const PLACEHOLDER_ROLE_ARN = 'arn:aws:iam::000000000000:role/fleet-scheduler';
const DEFAULT_TIMEZONE = 'UTC';
const GET_CONCURRENCY = 10;

type SchedulerConfig = Pick<
  Config,
  | 'AWS_REGION'
  | 'AWS_ENDPOINT_URL'
  | 'QUEUE_PREFIX'
  | 'SCHEDULE_GROUP'
  | 'SCHEDULE_TARGET_ARN'
  | 'SCHEDULE_ROLE_ARN'
>;

const isNotFound = (err: unknown) => err instanceof Error && err.name === 'ResourceNotFoundException';
const isConflict = (err: unknown) => err instanceof Error && err.name === 'ConflictException';

export class EventBridgeScheduler implements Scheduler {
  private group?: Promise<void>;
  private target?: Promise<string>;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly injected?: SchedulerClient,
    /** Only used to find the events queue's ARN when SCHEDULE_TARGET_ARN is unset. */
    private readonly sqs: SQSClient = sqsClient(config),
  ) {}

  private apiPromise?: Promise<{ client: SchedulerClient; m: Sdk }>;

  /** The client and the SDK's commands, loaded on first use. */
  private api(): Promise<{ client: SchedulerClient; m: Sdk }> {
    return (this.apiPromise ??= (async () => ({
      client: this.injected ?? (await schedulerClient(this.config)),
      m: await import('@aws-sdk/client-scheduler'),
    }))());
  }

  async upsert(spec: ScheduleSpec): Promise<void> {
    const { client, m } = await this.api();
    await this.ensureGroup();
    const input: CreateScheduleInput = {
      Name: spec.name,
      GroupName: this.config.SCHEDULE_GROUP,
      ScheduleExpression: spec.expression,
      ScheduleExpressionTimezone: spec.timezone ?? DEFAULT_TIMEZONE,
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: spec.enabled === false ? 'DISABLED' : 'ENABLED',
      Description: spec.description,
      Target: {
        Arn: await this.targetArn(),
        RoleArn: this.config.SCHEDULE_ROLE_ARN ?? PLACEHOLDER_ROLE_ARN,
        Input: spec.payload,
      },
    };
    try {
      await client.send(new m.CreateScheduleCommand(input));
    } catch (err) {
      if (isConflict(err)) {
        // UpdateSchedule replaces every field, so the stored schedule ends up exactly as specified.
        await client.send(new m.UpdateScheduleCommand(input));
        return;
      }
      if (isNotFound(err)) {
        // The group vanished after we ensured it (deleted by hand, emulator reset): recreate once.
        this.group = undefined;
        await this.ensureGroup();
        await client.send(new m.CreateScheduleCommand(input));
        return;
      }
      throw err;
    }
  }

  async get(name: string): Promise<StoredSchedule | undefined> {
    const { client, m } = await this.api();
    try {
      const out = await client.send(
        new m.GetScheduleCommand({ Name: name, GroupName: this.config.SCHEDULE_GROUP }),
      );
      return toStored(out, this.config.SCHEDULE_GROUP);
    } catch (err) {
      if (isNotFound(err)) return undefined; // schedule or whole group missing
      throw err;
    }
  }

  async delete(name: string): Promise<boolean> {
    const { client, m } = await this.api();
    try {
      await client.send(new m.DeleteScheduleCommand({ Name: name, GroupName: this.config.SCHEDULE_GROUP }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(prefix?: string): Promise<StoredSchedule[]> {
    const { client, m } = await this.api();
    const names: string[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const page = await client.send(
          new m.ListSchedulesCommand({
            GroupName: this.config.SCHEDULE_GROUP,
            NamePrefix: prefix || undefined,
            NextToken,
          }),
        );
        for (const s of page.Schedules ?? []) {
          // Filtered again here: not every emulator honours NamePrefix.
          if (s.Name && (!prefix || s.Name.startsWith(prefix))) names.push(s.Name);
        }
        NextToken = page.NextToken || undefined;
      } while (NextToken);
    } catch (err) {
      if (isNotFound(err)) return []; // no group yet: nothing was ever scheduled
      throw err;
    }
    // ListSchedules returns summaries (target ARN only): the expression and payload need GetSchedule.
    const out: StoredSchedule[] = [];
    for (let i = 0; i < names.length; i += GET_CONCURRENCY) {
      const details = await Promise.all(names.slice(i, i + GET_CONCURRENCY).map((n) => this.get(n)));
      for (const d of details) if (d) out.push(d); // deleted between list and get
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async ping(): Promise<void> {
    const { client, m } = await this.api();
    try {
      await client.send(new m.GetScheduleGroupCommand({ Name: this.config.SCHEDULE_GROUP }));
    } catch (err) {
      if (!isNotFound(err)) throw err; // the service answered; the group appears on first upsert
    }
  }

  /** Creates SCHEDULE_GROUP unless it exists, once per instance. */
  ensureGroup(): Promise<void> {
    this.group ??= this.createGroupIfMissing().catch((err: unknown) => {
      this.group = undefined;
      throw err;
    });
    return this.group;
  }

  /** The queue ARN firings are delivered to. */
  targetArn(): Promise<string> {
    if (this.config.SCHEDULE_TARGET_ARN) return Promise.resolve(this.config.SCHEDULE_TARGET_ARN);
    // Local runtime against an emulator: nothing deployed the ARN into config, so ask SQS for it.
    this.target ??= new SqsQueue(this.config, this.sqs).arn(EVENTS_QUEUE).catch((err: unknown) => {
      this.target = undefined;
      throw new Error(
        `SCHEDULE_TARGET_ARN is unset and queue ${this.config.QUEUE_PREFIX}${EVENTS_QUEUE} was not found: ${String(err)}`,
        { cause: err },
      );
    });
    return this.target;
  }

  private async createGroupIfMissing(): Promise<void> {
    const { client, m } = await this.api();
    const Name = this.config.SCHEDULE_GROUP;
    // Look before creating: moto's CreateScheduleGroup replaces an existing group, dropping its schedules.
    try {
      await client.send(new m.GetScheduleGroupCommand({ Name }));
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await client.send(new m.CreateScheduleGroupCommand({ Name }));
    } catch (err) {
      if (!isConflict(err)) throw err; // created concurrently: fine
    }
  }
}

function toStored(out: GetScheduleOutput, group: string): StoredSchedule {
  return {
    name: out.Name ?? '',
    group: out.GroupName ?? group,
    expression: out.ScheduleExpression ?? '',
    timezone: out.ScheduleExpressionTimezone ?? DEFAULT_TIMEZONE,
    payload: out.Target?.Input ?? '',
    enabled: out.State !== 'DISABLED',
    ...(out.Description ? { description: out.Description } : {}),
    target: out.Target?.Arn ?? '',
  };
}
