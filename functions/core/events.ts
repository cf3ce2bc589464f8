import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod';
import type { AppContext } from './context.js';

/**
 * Messages on the `events` queue: schedule firings, reconcile requests, agent results.
 * Every message is `{type, ...}`; handlers must be idempotent (SQS delivers at least once).
 */
export const eventEnvelope = z.looseObject({ type: z.string().min(1), id: z.string().optional() });
export type EventEnvelope = z.infer<typeof eventEnvelope>;

export type EventHandler = (event: EventEnvelope, ctx: AppContext) => Promise<void>;

export const EVENTS_QUEUE = 'events';

/** Processes one batch; failed records are reported back so only they are redelivered. */
export async function processEventBatch(
  event: SQSEvent,
  handlers: Record<string, EventHandler>,
  ctx: AppContext,
): Promise<SQSBatchResponse> {
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    try {
      const parsed = eventEnvelope.safeParse(JSON.parse(record.body));
      if (!parsed.success) {
        // A malformed message can never succeed: drop it loudly rather than loop to the DLQ.
        ctx.logger.error('dropping malformed event', { messageId: record.messageId });
        continue;
      }
      const handler = handlers[parsed.data.type];
      if (!handler) {
        ctx.logger.warn('no handler for event type', { type: parsed.data.type, messageId: record.messageId });
        continue;
      }
      await handler(parsed.data, ctx);
    } catch (error) {
      ctx.logger.error('event failed', { messageId: record.messageId, error: error as Error });
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures: failures };
}

/** Sends an event to the events queue. */
export async function emit(ctx: AppContext, event: EventEnvelope, delaySeconds?: number): Promise<void> {
  await ctx.queue.send(EVENTS_QUEUE, JSON.stringify(event), delaySeconds ? { delaySeconds } : undefined);
}
