import { call } from './http.js';
import * as z from 'zod';
import {
  queueCredentials,
  registerResponse,
  rotateTokenResponse,
  type AgentEvent,
  type HeartbeatRequest,
  type QueueCredentialsResponse,
  type RegisterRequest,
  type RegisterResponse,
} from '../protocol/messages.js';
import { type CommandResult } from '../protocol/commands.js';
import {
  checkpointCommitResponse,
  checkpointRestoreResponse,
  checkpointUploadsResponse,
  type CheckpointFileIn,
  type CheckpointRestoreResponse,
  type CheckpointUploadsResponse,
  type ChunkTransfer,
} from '../protocol/checkpoints.js';
import { installCredential, type InstallCredential, type InstallStepReport } from '../protocol/install.js';
import { retry, type BackoffOptions } from './backoff.js';
import { currentRequestId, errorFields, type Logger } from './log.js';
import { AGENT_VERSION } from './version.js';

/** A message from GET /agent/commands: `body` is a CommandEnvelope, as JSON text (or already parsed). */
export interface PolledMessage {
  receiptHandle: string;
  body: string;
}

const pollResponse = z.object({
  messages: z
    .array(
      z.object({ receiptHandle: z.string(), body: z.union([z.string(), z.record(z.string(), z.unknown())]) }),
    )
    .default([]),
});

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

/**
 * The agent's side of the control-plane HTTP API. Every call has its own timeout; failures that
 * may pass (network, 5xx, 429) are retried with capped exponential backoff and jitter; a 401
 * triggers one re-registration and the call is repeated with the new token.
 */
export class ControlPlaneClient {
  private token: string | undefined;
  private readonly baseUrl: string;
  private readonly timeouts: ClientTimeouts;
  private readonly log: Logger;
  private reRegistering: Promise<void> | null = null;

  constructor(private readonly options: ClientOptions) {
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

  /**
   * Registers with the node's own credential when it has one (an existing node re-registers as
   * itself), else, or when that one is refused, with the API key or the join token (which only
   * creates nodes).
   */
  async register(body: RegisterRequest, options: CallOptions = {}): Promise<RegisterResponse> {
    const bootstrap = this.options.apiKey ?? this.options.joinToken;
    const attempt = (bearer: string | undefined) =>
      this.withRetry('register', { attempts: Infinity, ...options }, (signal) =>
        this.send('register', 'POST', '/agent/register', {
          body,
          bearer,
          timeoutMs: this.timeouts.registerMs,
          signal,
        }),
      );
    let res: unknown;
    if (this.token) {
      try {
        res = await attempt(this.token);
      } catch (error) {
        if (!(error instanceof ControlPlaneError && error.status === 401) || !bootstrap) throw error;
        this.log.warn('node credential refused on registration; using the bootstrap credential');
        res = await attempt(bootstrap);
      }
    } else res = await attempt(bootstrap);
    const parsed = registerResponse.parse(res);
    this.token = parsed.token;
    return parsed;
  }

  /** Replaces the node's credential (POST /agent/token/rotate); the old one stops working at once. */
  async rotateToken(options: CallOptions = {}): Promise<string> {
    const res = await this.withRetry('token.rotate', { attempts: 1, ...options }, (signal) =>
      this.send('token.rotate', 'POST', '/agent/token/rotate', {
        timeoutMs: this.timeouts.registerMs,
        signal,
      }),
    );
    const parsed = rotateTokenResponse.parse(res);
    this.token = parsed.token;
    return parsed.token;
  }

  async heartbeat(body: HeartbeatRequest, options: CallOptions = {}): Promise<void> {
    await this.withRetry('heartbeat', { attempts: 1, ...options }, (signal) =>
      this.send('heartbeat', 'POST', '/agent/heartbeat', {
        body,
        timeoutMs: this.timeouts.heartbeatMs,
        signal,
      }),
    );
  }

  async pollCommands(waitSeconds: number, max: number, options: CallOptions = {}): Promise<PolledMessage[]> {
    const res = await this.withRetry('commands.poll', { attempts: 1, ...options }, (signal) =>
      this.send('commands.poll', 'GET', `/agent/commands?wait=${waitSeconds}&max=${max}`, {
        timeoutMs: waitSeconds * 1000 + this.timeouts.pollExtraMs,
        signal,
      }),
    );
    return pollResponse.parse(res ?? {}).messages.map((m) => ({
      receiptHandle: m.receiptHandle,
      body: typeof m.body === 'string' ? m.body : JSON.stringify(m.body),
    }));
  }

  async ack(receiptHandles: string[], options: CallOptions = {}): Promise<void> {
    if (receiptHandles.length === 0) return;
    await this.withRetry('commands.ack', { attempts: 5, ...options }, (signal) =>
      this.send('commands.ack', 'POST', '/agent/commands/ack', {
        body: { receiptHandles },
        timeoutMs: this.timeouts.ackMs,
        signal,
      }),
    );
  }

  /** Short-lived credentials for the node's own command queue (the sqs channel). */
  async queueCredentials(options: CallOptions = {}): Promise<QueueCredentialsResponse> {
    const res = await this.withRetry('credentials', { attempts: 3, ...options }, (signal) =>
      this.send('credentials', 'POST', '/agent/credentials', {
        timeoutMs: this.timeouts.credentialsMs,
        signal,
      }),
    );
    return queueCredentials.parse(res);
  }

  async reportResult(commandId: string, result: CommandResult, options: CallOptions = {}): Promise<void> {
    await this.withRetry('commands.result', { attempts: 8, ...options }, (signal) =>
      this.send('commands.result', 'POST', `/agent/commands/${encodeURIComponent(commandId)}/result`, {
        body: result,
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
  }

  /** host.install's login and join token, for that command only (never stored, never logged). */
  async installCredential(commandId: string, options: CallOptions = {}): Promise<InstallCredential> {
    const res = await this.withRetry('install.credential', { attempts: 3, ...options }, (signal) =>
      this.send('install.credential', 'POST', `/agent/install/${encodeURIComponent(commandId)}/credential`, {
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    return installCredential.parse(res);
  }

  async installSteps(commandId: string, steps: InstallStepReport[], options: CallOptions = {}): Promise<void> {
    await this.withRetry('install.steps', { attempts: 2, ...options }, (signal) =>
      this.send('install.steps', 'POST', `/agent/install/${encodeURIComponent(commandId)}/steps`, {
        body: { steps },
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
  }

  async postEvents(events: AgentEvent[], options: CallOptions = {}): Promise<void> {
    // The contract takes at most 100 a request.
    for (let i = 0; i < events.length; i += 100) {
      const batch = events.slice(i, i + 100);
      await this.withRetry('events', { attempts: 8, ...options }, (signal) =>
        this.send('events', 'POST', '/agent/events', {
          body: { events: batch },
          timeoutMs: this.timeouts.eventsMs,
          signal,
        }),
      );
    }
  }

  /** The job's stored checkpoint and where to fetch its chunks, for this node's run. */
  async checkpointRestore(
    jobId: string,
    instanceId: string,
    options: CallOptions = {},
  ): Promise<CheckpointRestoreResponse> {
    const res = await this.withRetry('checkpoint.restore', { attempts: 3, ...options }, (signal) =>
      this.send('checkpoint.restore', 'POST', `/agent/checkpoints/${encodeURIComponent(jobId)}/restore`, {
        body: { instanceId },
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    return checkpointRestoreResponse.parse(res);
  }

  async checkpointUploads(
    jobId: string,
    body: { instanceId: string; totalBytes: number; chunks: { hash: string; size: number }[] },
    options: CallOptions = {},
  ): Promise<CheckpointUploadsResponse> {
    const res = await this.withRetry('checkpoint.uploads', { attempts: 3, ...options }, (signal) =>
      this.send('checkpoint.uploads', 'POST', `/agent/checkpoints/${encodeURIComponent(jobId)}/uploads`, {
        body,
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    return checkpointUploadsResponse.parse(res);
  }

  async checkpointCommit(
    jobId: string,
    body: { instanceId: string; chunkBytes: number; files: CheckpointFileIn[] },
    options: CallOptions = {},
  ): Promise<void> {
    const res = await this.withRetry('checkpoint.commit', { attempts: 3, ...options }, (signal) =>
      this.send('checkpoint.commit', 'PUT', `/agent/checkpoints/${encodeURIComponent(jobId)}/manifest`, {
        body,
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    checkpointCommitResponse.parse(res);
  }

  /**
   * One chunk up or down: an absolute URL is presigned (sent as is, without the node's
   * credential); a path is the control plane's agent route.
   */
  async checkpointChunk(t: ChunkTransfer, body?: Uint8Array, options: CallOptions = {}): Promise<Buffer> {
    const presigned = /^https?:\/\//.test(t.url);
    return this.withRetry('checkpoint.chunk', { attempts: 3, ...options }, async (signal) => {
      const headers: Record<string, string> = { 'user-agent': `fleet-agent/${AGENT_VERSION}`, ...t.headers };
      if (!presigned) headers['x-request-id'] = currentRequestId();
      if (body) headers['content-type'] = 'application/octet-stream';
      if (!presigned && this.token) headers['authorization'] = `Bearer ${this.token}`;
      const timeout = AbortSignal.timeout(this.timeouts.resultMs * 4);
      const res = await call(presigned ? t.url : `${this.baseUrl}${t.url}`, {
        method: body ? 'PUT' : 'GET',
        headers,
        ...(body ? { body } : {}),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (res.statusCode < 200 || res.statusCode >= 300)
        throw new ControlPlaneError('checkpoint.chunk', res.statusCode, presigned ? '' : res.text);
      return res.bytes;
    });
  }

  private async withRetry<T>(
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

  private async send(
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
