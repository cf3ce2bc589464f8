import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { emit } from '../core/events.js';
import { apiTime, type JobItem } from './model.js';
import { trainingSettings, type WebhookTarget } from './settings.js';
import type { JobStatus } from './state.js';
import { deliverWebhook } from '../core/webhooks.js';
import { urlOrigin } from '../core/urls.js';

/**
 * Status notifications. Every status change emits one `webhook.deliver` event per receiver;
 * delivery happens in the events worker, retried with backoff, and gives up after a few tries,
 * so a dead receiver costs a few short timeouts and never holds a job back.
 *
 * Each request is signed: `X-Fleet-Signature: sha256=<hex>` is HMAC-SHA256, keyed with the
 * `webhook-signing-key` secret, over `<X-Fleet-Timestamp>.<raw body>`.
 */

export const SIGNING_SECRET = 'webhook-signing-key';
export const SIGNATURE_HEADER = 'x-fleet-signature';
export const TIMESTAMP_HEADER = 'x-fleet-timestamp';

export function sign(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

const keyCache = new WeakMap<AppContext, { value: string; at: number }>();
const KEY_CACHE_MS = 5 * 60_000;

/** The signing key, generated and stored on first use. */
export async function signingKey(ctx: AppContext): Promise<string> {
  const cached = keyCache.get(ctx);
  if (cached && ctx.now() - cached.at < KEY_CACHE_MS) return cached.value;
  let value = await ctx.secrets.get(SIGNING_SECRET);
  if (!value) {
    await ctx.secrets.put(SIGNING_SECRET, randomBytes(32).toString('hex'));
    // Read back: of two first deliveries racing, both then sign with the value that stayed.
    value = (await ctx.secrets.get(SIGNING_SECRET))!;
  }
  keyCache.set(ctx, { value, at: ctx.now() });
  return value;
}

export const resetSigningKeyCache = (ctx: AppContext): void => void keyCache.delete(ctx);

export const notification = z.object({
  event: z.literal('job.status_changed'),
  job_id: z.string(),
  name: z.string(),
  status: z.string(),
  previous_status: z.string(),
  retry_count: z.number().int(),
  max_retries: z.number().int(),
  error_message: z.string().nullable(),
  /** Per job, rises with every change: receivers order by it (SQS may reorder retried deliveries). */
  sequence: z.number().int(),
  timestamp: z.string(),
});
export type Notification = z.infer<typeof notification>;

export const deliverEvent = z.object({
  type: z.literal('webhook.deliver'),
  url: z.string(),
  format: z.enum(['json', 'slack']),
  delivery_id: z.string(),
  attempt: z.number().int().min(1),
  payload: notification,
});
export type DeliverEvent = z.infer<typeof deliverEvent>;

const STATUS_WORD: Record<string, string> = {
  pending: 'is pending',
  running: 'is running',
  completed: 'completed',
  failed: 'failed',
  retrying: 'will retry',
};

export function slackText(n: Notification): string {
  const head = `Training job *${n.name}* (\`${n.job_id}\`) ${STATUS_WORD[n.status] ?? n.status} (was ${n.previous_status}), retries ${n.retry_count}/${n.max_retries}`;
  return n.error_message ? `${head}\n\`\`\`${n.error_message}\`\`\`` : head;
}

export function deliveryBody(format: WebhookTarget['format'], payload: Notification): string {
  return JSON.stringify(format === 'slack' ? { text: slackText(payload) } : payload);
}

/** Queues one delivery per receiver. Never throws: a notification must not undo a transition. */
export async function notifyStatus(ctx: AppContext, previous: JobStatus, job: JobItem): Promise<void> {
  if (previous === job.status) return;
  const targets = trainingSettings(ctx).webhooks;
  if (!targets.length) return;
  const payload: Notification = {
    event: 'job.status_changed',
    job_id: job.jobId,
    name: job.name,
    status: job.status,
    previous_status: previous,
    retry_count: job.retryCount,
    max_retries: job.maxRetries,
    error_message: job.errorMessage,
    sequence: job.statusSeq,
    timestamp: apiTime(new Date(ctx.now()).toISOString())!,
  };
  for (const target of targets) {
    const receiver = createHash('sha256').update(target.url).digest('hex').slice(0, 8);
    const event: DeliverEvent = {
      type: 'webhook.deliver',
      url: target.url,
      format: target.format,
      delivery_id: `${job.jobId}.${job.statusSeq}.${receiver}`,
      attempt: 1,
      payload,
    };
    try {
      await emit(ctx, event);
    } catch (error) {
      ctx.logger.error('could not queue a job notification', {
        jobId: job.jobId,
        receiver: urlOrigin(target.url),
        error: error as Error,
      });
    }
  }
}

/** Delay before delivery attempt n+1: 5 s, 20 s, 80 s, 320 s, then the SQS maximum. */
export const redeliverySeconds = (attempt: number) => Math.min(900, 5 * 4 ** (attempt - 1));

/** Sends one delivery; on failure queues the next attempt, or gives up after the last. */
export async function deliver(ctx: AppContext, event: DeliverEvent): Promise<boolean> {
  const settings = trainingSettings(ctx);
  const body = deliveryBody(event.format, event.payload);
  const timestamp = Math.floor(ctx.now() / 1000);
  return deliverWebhook(ctx, {
    what: 'job notification',
    url: event.url,
    deliveryId: event.delivery_id,
    attempt: event.attempt,
    maxAttempts: settings.webhookMaxAttempts,
    headers: {
      [SIGNATURE_HEADER]: sign(await signingKey(ctx), timestamp, body),
      [TIMESTAMP_HEADER]: String(timestamp),
      'x-fleet-event': event.payload.event,
      'x-fleet-delivery': event.delivery_id,
    },
    body,
    timeoutMs: settings.webhookTimeoutMs,
    retryDelaySeconds: redeliverySeconds,
    retry: (delay) => emit(ctx, { ...event, attempt: event.attempt + 1 }, delay),
  });
}
