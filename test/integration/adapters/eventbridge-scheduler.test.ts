import { GetScheduleCommand } from '@aws-sdk/client-scheduler';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetAwsClients, schedulerClient } from '../../../functions/adapters/aws-clients.js';
import {
  EVENTS_QUEUE,
  EventBridgeScheduler,
  PLACEHOLDER_ROLE_ARN,
} from '../../../functions/adapters/eventbridge-scheduler.js';
import { SqsQueue } from '../../../functions/adapters/sqs-queue.js';
import type { Config } from '../../../functions/core/config.js';
import { describeWithMoto, resetMoto, testConfig } from '../../harness/services.js';

describeWithMoto('EventBridgeScheduler against the AWS emulator', () => {
  let config: Config;
  let scheduler: EventBridgeScheduler;
  let eventsArn: string;

  beforeAll(async () => {
    await resetMoto();
    // No SCHEDULE_TARGET_ARN / SCHEDULE_ROLE_ARN: the local-runtime path that looks up the events queue.
    config = testConfig({ SCHEDULE_TARGET_ARN: undefined, SCHEDULE_ROLE_ARN: undefined });
    const queue = new SqsQueue(config);
    await queue.ensure({ name: EVENTS_QUEUE });
    eventsArn = await queue.arn(EVENTS_QUEUE);
    scheduler = new EventBridgeScheduler(config);
  });

  afterAll(() => resetAwsClients());

  it('creates a cron schedule with timezone, payload and the events queue as target', async () => {
    await scheduler.upsert({
      name: 'nightly-backup',
      expression: 'cron(0 3 * * ? *)',
      timezone: 'Europe/Berlin',
      payload: '{"kind":"backup","node":"n-1"}',
      description: 'nightly backup',
    });

    expect(await scheduler.get('nightly-backup')).toEqual({
      name: 'nightly-backup',
      group: config.SCHEDULE_GROUP,
      expression: 'cron(0 3 * * ? *)',
      timezone: 'Europe/Berlin',
      payload: '{"kind":"backup","node":"n-1"}',
      enabled: true,
      description: 'nightly backup',
      target: eventsArn,
    });

    const raw = await (await schedulerClient(config)).send(
      new GetScheduleCommand({ Name: 'nightly-backup', GroupName: config.SCHEDULE_GROUP }),
    );
    expect(raw.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
    expect(raw.Target?.RoleArn).toBe(PLACEHOLDER_ROLE_ARN);
    expect(raw.State).toBe('ENABLED');
  });

  it('upsert on an existing name updates it in place', async () => {
    await scheduler.upsert({ name: 'reporter', expression: 'rate(5 minutes)', payload: '{"v":1}' });
    expect(await scheduler.get('reporter')).toMatchObject({ expression: 'rate(5 minutes)', timezone: 'UTC' });

    await scheduler.upsert({
      name: 'reporter',
      expression: 'cron(30 8 ? * MON-FRI *)',
      timezone: 'America/New_York',
      payload: '{"v":2}',
      enabled: false,
    });
    expect(await scheduler.get('reporter')).toMatchObject({
      expression: 'cron(30 8 ? * MON-FRI *)',
      timezone: 'America/New_York',
      payload: '{"v":2}',
      enabled: false,
      target: eventsArn,
    });
  });

  it('a second instance reuses the existing group without losing its schedules', async () => {
    // moto's CreateScheduleGroup would replace the group; the adapter must look before creating.
    const other = new EventBridgeScheduler(config);
    await other.upsert({ name: 'one-shot', expression: 'at(2030-01-01T00:00:00)', payload: '{}' });
    expect(await other.get('nightly-backup')).toBeDefined();
    expect(await scheduler.get('one-shot')).toMatchObject({ expression: 'at(2030-01-01T00:00:00)' });
  });

  it('lists with a name prefix, with details from GetSchedule', async () => {
    await scheduler.upsert({ name: 'nightly-cleanup', expression: 'cron(0 4 * * ? *)', payload: '{"c":1}' });
    const nightly = await scheduler.list('nightly-');
    expect(nightly.map((s) => s.name)).toEqual(['nightly-backup', 'nightly-cleanup']);
    expect(nightly[1]).toMatchObject({
      expression: 'cron(0 4 * * ? *)',
      payload: '{"c":1}',
      target: eventsArn,
    });

    const all = await scheduler.list();
    expect(all.map((s) => s.name)).toEqual(['nightly-backup', 'nightly-cleanup', 'one-shot', 'reporter']);
  });

  it('lists across pages (more schedules than one ListSchedules page)', async () => {
    const names = Array.from({ length: 60 }, (_, i) => `bulk-${String(i).padStart(2, '0')}`);
    for (const name of names)
      await scheduler.upsert({ name, expression: 'rate(1 hour)', payload: `"${name}"` });
    const listed = await scheduler.list('bulk-');
    expect(listed.map((s) => s.name)).toEqual(names);
    expect(listed.every((s, i) => s.payload === `"${names[i]}"`)).toBe(true);
  });

  it('delete reports whether there was a schedule; get answers undefined afterwards', async () => {
    expect(await scheduler.delete('reporter')).toBe(true);
    expect(await scheduler.delete('reporter')).toBe(false);
    expect(await scheduler.get('reporter')).toBeUndefined();
    expect((await scheduler.list()).map((s) => s.name)).not.toContain('reporter');
  });

  it('uses the configured target and role when given, and pings', async () => {
    const explicit = testConfig({
      SCHEDULE_TARGET_ARN: 'arn:aws:sqs:us-east-1:123456789012:fleet-events',
      SCHEDULE_ROLE_ARN: 'arn:aws:iam::123456789012:role/scheduler',
    });
    const s = new EventBridgeScheduler(explicit);
    await s.ping(); // group not created yet: still answers
    await s.upsert({ name: 'explicit', expression: 'rate(1 day)', payload: '{}' });
    expect(await s.get('explicit')).toMatchObject({
      group: explicit.SCHEDULE_GROUP,
      target: 'arn:aws:sqs:us-east-1:123456789012:fleet-events',
    });
    const raw = await (await schedulerClient(explicit)).send(
      new GetScheduleCommand({ Name: 'explicit', GroupName: explicit.SCHEDULE_GROUP }),
    );
    expect(raw.Target?.RoleArn).toBe('arn:aws:iam::123456789012:role/scheduler');
    // Groups keep deployments apart.
    expect(await scheduler.get('explicit')).toBeUndefined();
  });

  it('answers empty for a group that was never created, and fails clearly without an events queue', async () => {
    const fresh = new EventBridgeScheduler(testConfig({ SCHEDULE_TARGET_ARN: undefined }));
    expect(await fresh.list()).toEqual([]);
    expect(await fresh.get('anything')).toBeUndefined();
    expect(await fresh.delete('anything')).toBe(false);
    await expect(fresh.upsert({ name: 'x', expression: 'rate(1 day)', payload: '{}' })).rejects.toThrow(
      /SCHEDULE_TARGET_ARN is unset and queue .*events was not found/,
    );
  });
});
