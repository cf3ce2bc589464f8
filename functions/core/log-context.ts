import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The ids of the work in progress, put on every log line and trace written during it: the API
 * request id (or, in the events function, the SQS message id of the event), and the node command
 * id once one is known. AsyncLocalStorage, because the local runtime serves requests concurrently
 * in one process and a logger-wide key would leak from one request to another.
 */
export interface LogContext {
  requestId?: string;
  commandId?: string;
  /** The caller's own id for the call (`x-request-id`; the agent sends one per operation). */
  clientRequestId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(ids: LogContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...ids }, fn);
}

/** Adds an id to the current unit of work (a command id learnt from the path or a dispatch). */
export function addToLogContext(ids: LogContext): void {
  const store = storage.getStore();
  if (store) Object.assign(store, ids);
}

export const currentLogContext = (): LogContext => storage.getStore() ?? {};
