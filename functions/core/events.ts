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

/**
 * Runs one event's handler; `requestId` names it in the logs. An event that can never succeed
 * (malformed, or of no known type) is dropped loudly rather than retried to the dead-letter queue;
 * what the handler throws is thrown.
 */
async function handleEvent(
  body: unknown,
  requestId: string,
  handlers: Record<string, EventHandler>,
  ctx: AppContext,
): Promise<void> {
  const parsed = eventEnvelope.safeParse(body);
  if (!parsed.success) {
    ctx.logger.error('dropping malformed event', { messageId: requestId });
    return;
  }
  const handler = handlers[parsed.data.type];
  if (!handler) {
    ctx.logger.warn('no handler for event type', { type: parsed.data.type, messageId: requestId });
    return;
  }
  const data = parsed.data as { type: string; commandId?: unknown };
  const ids = { requestId, ...(typeof data.commandId === 'string' ? { commandId: data.commandId } : {}) };
  await withLogContext(ids, () =>
    traceSpan(`event ${data.type}`, async () => {
      annotateTrace({ ...ids, eventType: data.type });
      await handler(parsed.data, ctx);
    }),
  );
}

/** Processes one batch; failed records are reported back so only they are redelivered. */
export async function processEventBatch(
  event: SQSEvent,
  handlers: Record<string, EventHandler>,
  ctx: AppContext,
): Promise<SQSBatchResponse> {
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    try {
      await handleEvent(JSON.parse(record.body), record.messageId, handlers, ctx);
    } catch (error) {
      ctx.logger.error('event failed', { messageId: record.messageId, error: error as Error });
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures: failures };
}

/**
 * One event delivered straight to the events function, not through the queue: an EventBridge
 * Scheduler firing whose target is the function (the minute schedule: no SQS message a minute).
 * A failure throws, so Lambda's asynchronous retries and then its on-failure destination (the
 * events dead-letter queue, lib/stack.ts) take it, as the queue's redrive did.
 */
export async function processDirectEvent(
  event: unknown,
  requestId: string,
  handlers: Record<string, EventHandler>,
  ctx: AppContext,
): Promise<void> {
  try {
    await handleEvent(event, requestId, handlers, ctx);
  } catch (error) {
    ctx.logger.error('event failed', { messageId: requestId, error: error as Error });
    throw error;
  }
}

/** Sends a declared event to the events queue. */
export async function emit(ctx: AppContext, event: AppEventInput, delaySeconds?: number): Promise<void> {
  await ctx.queue.send(EVENTS_QUEUE, JSON.stringify(event), delaySeconds ? { delaySeconds } : undefined);
}
