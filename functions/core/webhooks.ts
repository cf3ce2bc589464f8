import type { AppContext } from './context.js';
import { outboundRequest, OutboundRefusedError } from './outbound.js';
import { urlOrigin } from './urls.js';

/** One attempt of a webhook delivery, and the policy for the next. */
export interface WebhookDelivery {
  /** For the logs: `job notification`, `instance notification`. */
  what: string;
  url: string;
  deliveryId: string;
  /** 1 for the first attempt. */
  attempt: number;
  maxAttempts: number;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Delay before attempt n+1. */
  retryDelaySeconds: (attempt: number) => number;
  /** Queues attempt n+1 (an event delayed by `delaySeconds`). */
  retry: (delaySeconds: number) => Promise<void>;
}

/**
 * The one webhook deliverer: a POST through the outbound checks (no redirects followed), a 2xx
 * is delivered; a destination the checks refuse is dropped at once (it would be refused again);
 * any other failure queues the next attempt with the caller's backoff, until the last.
 */
export async function deliverWebhook(ctx: AppContext, d: WebhookDelivery): Promise<boolean> {
  const receiver = urlOrigin(d.url);
  let failure: string;
  try {
    const res = await outboundRequest(d.url, ctx.config.OUTBOUND_ALLOWLIST, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'gpu-fleet-control-plane', ...d.headers },
      body: d.body,
      timeoutMs: d.timeoutMs,
    });
    if (res.status >= 200 && res.status < 300) return true;
    failure =
      res.status >= 300 && res.status < 400
        ? `HTTP ${res.status} (redirects are not followed)`
        : `HTTP ${res.status}`;
  } catch (error) {
    if (error instanceof OutboundRefusedError) {
      ctx.logger.error(`${d.what} refused`, { receiver, deliveryId: d.deliveryId, reason: error.message });
      return false;
    }
    failure = (error as Error).message;
  }
  const log = { receiver, deliveryId: d.deliveryId, attempt: d.attempt, failure };
  if (d.attempt >= d.maxAttempts) {
    ctx.logger.error(`giving up on a ${d.what}`, log);
    return false;
  }
  ctx.logger.warn(`${d.what} failed; will retry`, log);
  await d.retry(d.retryDelaySeconds(d.attempt));
  return false;
}
