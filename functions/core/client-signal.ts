import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The abort signal of the HTTP request being served, where the server can tell that its client
 * went away (the local runtime's server: the socket closed before the answer was written). On
 * Lambda there is none: API Gateway keeps no such connection open to the function.
 */
const storage = new AsyncLocalStorage<AbortSignal>();

export function withClientSignal<T>(signal: AbortSignal, fn: () => T): T {
  return storage.run(signal, fn);
}

export function clientSignal(): AbortSignal | undefined {
  return storage.getStore();
}
