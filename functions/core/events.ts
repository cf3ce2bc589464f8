import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { withLogContext } from './log-context.js';
import { annotateTrace, traceSpan } from './tracing.js';
import * as z from 'zod';
import type { AppContext } from './context.js';

/**
 * Messages on the `events` queue: schedule firings, reconcile requests, agent results.
 * Every message is `{type, ...}`; handlers must be idempotent (SQS delivers at least once).
 */
export const eventEnvelope = z.looseObject({ type: z.string().min(1), id: z.string().optional() });
export type EventEnvelope = z.infer<typeof eventEnvelope>;

export type EventHandler = (event: EventEnvelope, ctx: AppContext) => Promise<void>;

/**
 * Every internal event type with the schema of its fields, declared once by the area that
 * produces it, by augmenting this interface next to the schemas:
 *
 *     declare module '../core/events.js' { interface AppEventSchemas { 'job.fire': typeof jobFire } }
 *
 * and listing the same schemas in the area's event record (`trainingEvents`), which
 * functions/event-handlers.ts joins into the registry that checks every message before a handler
 * sees it. `emit` takes only declared events with their fields; handlers get them parsed.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by module augmentation
export interface AppEventSchemas {}
export type AppEventType = keyof AppEventSchemas & string;
type SchemaOf<T extends AppEventType> = AppEventSchemas[T] extends z.ZodType ? AppEventSchemas[T] : never;
/** An event as emitted: its type and the fields its schema takes (defaults may be left out). */
export type AppEventInput<T extends AppEventType = AppEventType> = {
  [K in T]: { type: K } & z.input<SchemaOf<K>>;
}[T];
/** An event as a handler sees it: parsed by its schema. */
export type AppEvent<T extends AppEventType> = { type: T } & z.output<SchemaOf<T>>;
/** An area's handlers, by event type. */
export type AreaEventHandlers = {
  [T in AppEventType]?: (event: AppEvent<T>, ctx: AppContext) => Promise<void>;
};
/** An area's declared events: the runtime half of its AppEventSchemas augmentation. */
export type AreaEvents = { [T in AppEventType]?: AppEventSchemas[T] };

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
      const data = parsed.data as { type: string; commandId?: unknown };
      const ids = {
        requestId: record.messageId,
        ...(typeof data.commandId === 'string' ? { commandId: data.commandId } : {}),
      };
      await withLogContext(ids, () =>
        traceSpan(`event ${data.type}`, async () => {
          annotateTrace({ ...ids, eventType: data.type });
          await handler(parsed.data, ctx);
        }),
      );
    } catch (error) {
      ctx.logger.error('event failed', { messageId: record.messageId, error: error as Error });
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures: failures };
}

/** Sends a declared event to the events queue. */
export async function emit(ctx: AppContext, event: AppEventInput, delaySeconds?: number): Promise<void> {
  await ctx.queue.send(EVENTS_QUEUE, JSON.stringify(event), delaySeconds ? { delaySeconds } : undefined);
}
