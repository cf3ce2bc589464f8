import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import type { NovitaInstanceItem } from './model.js';
import { deliverWebhook } from '../core/webhooks.js';
import { urlOrigin } from '../core/urls.js';

/**
 * Instance notifications to the instance's webhookUrl. Each is a `novita.webhook.deliver`
 * event: delivered by the events worker, retried with doubling delays, dropped after the last
 * attempt. The API call or poll that caused it never waits for the receiver.
 */

export const WEBHOOK_EVENT = 'novita.webhook.deliver';
const WEBHOOK_TIMEOUT_MS = 5000;

export const deliverEvent = z.object({
  type: z.literal(WEBHOOK_EVENT),
  url: z.string().url(),
  deliveryId: z.string(),
  attempt: z.number().int().min(1),
  payload: z.looseObject({ event: z.string(), instanceId: z.string() }),
});
export type DeliverEvent = z.infer<typeof deliverEvent>;

export function readyPayload(item: NovitaInstanceItem) {
  return {
    event: 'instance.ready',
    instanceId: item.instanceId,
    status: 'running',
    timestamp: item.readyAt,
    instance: { id: item.instanceId, name: item.name, connectionDetails: item.connectionDetails ?? {} },
  };
}

export function failedPayload(item: NovitaInstanceItem) {
  return {
    event: 'instance.failed',
    instanceId: item.instanceId,
    status: 'failed',
    timestamp: item.failedAt,
    error: item.error,
  };
}

export function migratedPayload(item: NovitaInstanceItem) {
  const started = item.migration ? Date.parse(item.migration.startedAt) : NaN;
  const ready = item.readyAt ? Date.parse(item.readyAt) : NaN;
  return {
    event: 'instance.migrated',
    instanceId: item.instanceId,
    originalInstanceId: item.originalInstanceId,
    status: 'running',
    timestamp: item.readyAt,
    migration: {
      reason: item.migration?.reason ?? 'spot_reclaim',
      triggeredBy: item.migration?.triggeredBy ?? 'automatic_migration',
      migrationTime: Number.isFinite(started) && Number.isFinite(ready) ? ready - started : 0,
    },
    instance: { id: item.instanceId, name: item.name, connectionDetails: item.connectionDetails ?? {} },
  };
}

/** Queues one notification when the instance has a webhook. Never throws: the transition stands. */
export async function notify(
  ctx: AppContext,
  item: NovitaInstanceItem,
  payload: { event: string; instanceId: string },
): Promise<void> {
  if (!item.webhookUrl) return;
  const event: DeliverEvent = {
    type: WEBHOOK_EVENT,
    url: item.webhookUrl,
    deliveryId: `${item.instanceId}.${payload.event}`,
    attempt: 1,
    payload,
  };
  try {
    await emit(ctx, event);
  } catch (error) {
    ctx.logger.error('could not queue an instance notification', {
      instanceId: item.instanceId,
      receiver: urlOrigin(item.webhookUrl),
      error: error as Error,
    });
  }
}

export const retryDelaySeconds = (ctx: AppContext, attempt: number) =>
  Math.min(900, ctx.config.NOVITA_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1));

/** One delivery attempt; on failure the next is queued with a delay, up to the configured count. */
export function deliver(ctx: AppContext, event: DeliverEvent): Promise<boolean> {
  return deliverWebhook(ctx, {
    what: 'instance notification',
    url: event.url,
    deliveryId: event.deliveryId,
    attempt: event.attempt,
    maxAttempts: ctx.config.NOVITA_WEBHOOK_MAX_ATTEMPTS,
    headers: { 'x-novita-event': String(event.payload.event), 'x-delivery-id': event.deliveryId },
    body: JSON.stringify(event.payload),
    timeoutMs: WEBHOOK_TIMEOUT_MS,
    retryDelaySeconds: (attempt) => retryDelaySeconds(ctx, attempt),
    retry: (delay) => emit(ctx, { ...event, attempt: event.attempt + 1 }, delay),
  });
}
