import type { SQSEvent } from 'aws-lambda';
import { loadConfig } from './config.js';
import type { AppContext } from './context.js';
import { processEventBatch, type EventHandler } from './events.js';
import { createHttpHandler } from './http.js';
import type { AnyRoute } from './route.js';
import { createAwsContext } from './aws-context.js';

let cached: AppContext | undefined;

/** One context per Lambda container, built on first use (not at import: config errors surface per request). */
export async function lambdaContext(): Promise<AppContext> {
  cached ??= createAwsContext(loadConfig(), { mode: 'lambda' });
  return cached;
}

/** For tests: forget the cached context. */
export const resetLambdaContext = () => (cached = undefined);

/** A Lambda entry point serving some routes of the table. */
export function httpEntry(routes: AnyRoute[]) {
  const config = loadConfig();
  return createHttpHandler({ routes, context: lambdaContext, corsOrigins: config.CORS_ORIGINS });
}

/** A Lambda entry point for the events queue (SQS event source with reportBatchItemFailures). */
export function eventsEntry(handlers: Record<string, EventHandler>) {
  return async function handleEvents(event: SQSEvent) {
    return processEventBatch(event, handlers, await lambdaContext());
  };
}
