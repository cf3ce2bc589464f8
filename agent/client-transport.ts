import * as z from 'zod';
import { retry, type BackoffOptions } from './backoff.js';
import { call } from './http.js';
import { currentRequestId, errorFields, type Logger } from './log.js';
import { AGENT_VERSION } from './version.js';

/**
 * How the agent calls the control plane: its node token, a timeout per call, retries with capped
 * exponential backoff and jitter for failures that may pass (network, 5xx, 429), and one
 * re-registration on a 401. The calls themselves are in client.ts and client-checkpoints.ts.
 */

export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
  constructor(
    readonly op: string,
    readonly status: number,
    readonly body: string,
    /** From Retry-After, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(`control plane ${op} answered ${status}${body ? `: ${body.slice(0, 300)}` : ''}`);
  }

  /** 408, 429 and 5xx are the server's trouble: try again. Other 4xx will not get better. */
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Network failures and timeouts are worth retrying; a bad answer or our own shutdown is not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof ControlPlaneError) return error.retryable;
  if (error instanceof z.ZodError) return false;
  return true;
}

export interface ClientTimeouts {
  registerMs: number;
  heartbeatMs: number;
  /** Added to the long-poll wait. */
  pollExtraMs: number;
  resultMs: number;
  eventsMs: number;
  ackMs: number;
  credentialsMs: number;
}

export const DEFAULT_CLIENT_TIMEOUTS: ClientTimeouts = {
  registerMs: 30_000,
  heartbeatMs: 15_000,
  pollExtraMs: 10_000,
  resultMs: 30_000,
  eventsMs: 30_000,
  ackMs: 15_000,
  credentialsMs: 15_000,
};

export interface ClientOptions {
  baseUrl: string;
  logger: Logger;
  /** Sent on register only (FLEET_API_KEY). */
  apiKey?: string;
  /** Sent on register only, when there is no API key (FLEET_JOIN_TOKEN). */
  joinToken?: string;
  token?: string;
  timeouts?: Partial<ClientTimeouts>;
  backoff?: BackoffOptions;
  /**
   * Called on a 401 to any token-authenticated call: register again (the server treats the same
   * name idempotently) and store the new credential. Concurrent 401s share one re-registration.
   */
  reRegister?: () => Promise<void>;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Tries in all; Infinity keeps going until success or abort. */
  attempts?: number;
}

export class ControlPlaneTransport {
  protected token: string | undefined;
  protected readonly baseUrl: string;
  protected readonly timeouts: ClientTimeouts;
  protected readonly log: Logger;
  private reRegistering: Promise<void> | null = null;

  constructor(protected readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeouts = { ...DEFAULT_CLIENT_TIMEOUTS, ...options.timeouts };
    this.token = options.token;
    this.log = options.logger.child({ component: 'client' });
  }

  setToken(token: string): void {
    this.token = token;
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  setReRegister(fn: () => Promise<void>): void {
    this.options.reRegister = fn;
  }

  protected async withRetry<T>(
    op: string,
    options: CallOptions,
    fn: (signal?: AbortSignal) => Promise<T>,
  ): Promise<T> {
    let reRegistered = false;
    return retry(
      async () => {
        try {
          return await fn(options.signal);
        } catch (error) {
          // One re-registration per call; a second 401 right after it is a real refusal.
          if (
            error instanceof ControlPlaneError &&
            error.status === 401 &&
            op !== 'register' &&
            !reRegistered &&
            this.options.reRegister
          ) {
            reRegistered = true;
            this.log.warn('token refused; registering again', { op });
            await this.reRegisterOnce();
            return await fn(options.signal);
          }
          throw error;
        }
      },
      {
        ...this.options.backoff,
        signal: options.signal,
        maxAttempts: options.attempts ?? 1,
        shouldRetry: (error) => !options.signal?.aborted && isRetryable(error),
        minDelayMs: (error) => (error instanceof ControlPlaneError ? error.retryAfterMs : undefined),
        onRetry: (error, attempt, delayMs) =>
          this.log.warn('control plane call failed; retrying', {
            op,
            attempt,
            delayMs,
            error: errorFields(error),
          }),
      },
    );
  }

  private reRegisterOnce(): Promise<void> {
    this.reRegistering ??= (this.options.reRegister?.() ?? Promise.resolve()).finally(() => {
      this.reRegistering = null;
    });
    return this.reRegistering;
  }

  protected async send(
    op: string,
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    /** `bearer`: this credential instead of the node token (registration). */
    opts: { body?: unknown; bearer?: string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<unknown> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': `fleet-agent/${AGENT_VERSION}`,
      // The control plane logs it beside its own id, so both sides' lines of one call match.
      'x-request-id': currentRequestId(),
    };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const bearer = 'bearer' in opts ? opts.bearer : this.token;
    if (bearer) headers['authorization'] = `Bearer ${bearer}`;
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const res = await call(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      signal,
    });
    const text = res.text;
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new ControlPlaneError(op, res.statusCode, text, retryAfterMs(res.headers['retry-after']));
    }
    if (!text) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ControlPlaneError(op, res.statusCode, `unparseable body: ${text.slice(0, 200)}`);
    }
  }
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
