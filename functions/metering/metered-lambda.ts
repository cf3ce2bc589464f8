/** The Lambda side of metering: each HTTP request or event handled is one invocation, with its duration and logs. */
import type { Context } from 'aws-lambda';
import type { EventHandler } from '../core/events.js';
import type { HttpEvent, HttpResult } from '../core/http.js';
import type { Meter } from './meter.js';

export interface LambdaMetering {
  /** The function's memory (lib/function.ts: 1024 MB unless the stack sets another); for HTTP, per request's function. */
  memoryMb: number | ((event: HttpEvent) => number);
  /** START, END and REPORT lines Lambda itself writes per invocation (text log format). */
  platformLogBytes?: number;
}

function chargeInvocation(
  meter: Meter,
  kind: string,
  startedAt: number,
  lambda: LambdaMetering,
  event?: HttpEvent,
): void {
  const billedMs = Math.max(1, Math.ceil(performance.now() - startedAt));
  const memoryMb =
    typeof lambda.memoryMb === 'number' ? lambda.memoryMb : event ? lambda.memoryMb(event) : 1024;
  meter.add(kind, {
    ...(event ? { httpRequests: 1 } : {}),
    lambdaInvocations: 1,
    lambdaGbSeconds: (memoryMb / 1024) * (billedMs / 1000),
    logBytes: lambda.platformLogBytes ?? 0,
  });
}

/** A route's name for the meter: the path with ids replaced by `{id}`. */
export function operationLabel(method: string, path: string): string {
  const parts = path
    .split('/')
    .map((p) => (/\d/.test(p) && (p.length >= 12 || /^[0-9a-f-]{8,}$/i.test(p)) ? '{id}' : p));
  return `${method} ${parts.join('/')}`;
}

type HttpHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** The HTTP entry: one API request, one Lambda invocation, its duration and its logs per call. */
export function meterHttpHandler(handler: HttpHandler, meter: Meter, lambda: LambdaMetering): HttpHandler {
  return (event, context) =>
    meter.within(operationLabel(event.requestContext.http.method, event.rawPath), async () => {
      const startedAt = performance.now();
      try {
        return await handler(event, context);
      } finally {
        chargeInvocation(meter, 'http', startedAt, lambda, event);
      }
    });
}

/** The events function: each event handled counts as one invocation (SQS batches of up to 10 would share one). */
export function meterEventHandlers(
  handlers: Record<string, EventHandler>,
  meter: Meter,
  lambda: LambdaMetering & { memoryMb: number },
): Record<string, EventHandler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([type, handler]) => [
      type,
      (event, ctx) =>
        meter.within(`event ${type}`, async () => {
          const startedAt = performance.now();
          try {
            await handler(event, ctx);
          } finally {
            chargeInvocation(meter, 'event', startedAt, lambda);
          }
        }),
    ]),
  );
}
