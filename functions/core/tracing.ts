/**
 * Trace annotations without the X-Ray SDK in every import graph: the Lambda entries install a
 * sink backed by Powertools' tracer (functions/core/lambda.ts); elsewhere (the local runtime,
 * tests) nothing is installed and annotating is a no-op.
 */
export interface TraceSink {
  annotate(key: string, value: string): void;
  /** Runs `fn` in a subsegment of its own (one per event of a batch, so each keeps its ids). */
  span<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

let sink: TraceSink | undefined;

export const installTraceSink = (s: TraceSink | undefined): void => {
  sink = s;
};

/** Searchable X-Ray annotations: requestId, commandId, connectionId, route, eventType. */
export function annotateTrace(fields: Record<string, string | undefined>): void {
  if (!sink) return;
  for (const [k, v] of Object.entries(fields)) if (v) sink.annotate(k, v);
}

export const traceSpan = <T>(name: string, fn: () => Promise<T>): Promise<T> =>
  sink ? sink.span(name, fn) : fn();
