import type { Context, SQSEvent } from 'aws-lambda';
import middy from '@middy/core';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { loadConfig } from './config.js';
import type { AppContext } from './context.js';
import { processDirectEvent, processEventBatch, type EventHandler } from './events.js';
import { createHttpHandler } from './http.js';
import type { AnyRoute } from './route.js';
import { createAwsContext } from './aws-context.js';
import { installTraceSink } from './tracing.js';

let cached: AppContext | undefined;

/** One context per Lambda container, built on first use (not at import: config errors surface per request). */
export async function lambdaContext(): Promise<AppContext> {
  cached ??= createAwsContext(loadConfig(), { mode: 'lambda' });
  return cached;
}

/** For tests: forget the cached context. */
export const resetLambdaContext = () => (cached = undefined);

/**
 * X-Ray through Powertools' tracer: the function's segment gets a `## handler` subsegment with the
 * cold start and service annotations, and the code annotates it with the request and command ids.
 * Outside Lambda the tracer disables itself and the sink stays a no-op.
 */
const tracer = new Tracer({ serviceName: loadConfig().SERVICE_NAME });
if (tracer.isTracingEnabled()) {
  installTraceSink({
    annotate: (key, value) => tracer.putAnnotation(key, value),
    span: async (name, fn) => {
      const parent = tracer.getSegment();
      const sub = parent?.addNewSubsegment(name);
      if (sub) tracer.setSegment(sub);
      try {
        return await fn();
      } catch (error) {
        sub?.addError(error as Error);
        throw error;
      } finally {
        sub?.close();
        if (parent) tracer.setSegment(parent);
      }
    },
  });
}

/** A Lambda entry point serving some routes of the table. */
export function httpEntry(routes: AnyRoute[]) {
  const config = loadConfig();
  return middy(createHttpHandler({ routes, context: lambdaContext, corsOrigins: config.CORS_ORIGINS })).use(
    captureLambdaHandler(tracer, { captureResponse: false }),
  );
}

/** A Lambda entry point for the WebSocket API's routes, traced like the others. */
export function websocketEntry<E, R>(fn: (event: E) => Promise<R>) {
  return middy(fn).use(captureLambdaHandler(tracer, { captureResponse: false }));
}

/**
 * A Lambda entry point for the events queue (SQS event source with reportBatchItemFailures) and for
 * the schedules that invoke the function directly (an event `{type, ...}` of its own).
 */
export function eventsEntry(handlers: Record<string, EventHandler>) {
  return middy(async function handleEvents(event: SQSEvent | { type?: unknown }, context: Context) {
    const ctx = await lambdaContext();
    if ('Records' in event) return processEventBatch(event, handlers, ctx);
    await processDirectEvent(event, context.awsRequestId, handlers, ctx);
    return undefined;
  }).use(captureLambdaHandler(tracer, { captureResponse: false }));
}
