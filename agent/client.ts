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
import { installCredential, type InstallCredential, type InstallStepReport } from '../protocol/install.js';
import { CheckpointCalls } from './client-checkpoints.js';
import { ControlPlaneError, type CallOptions } from './client-transport.js';

export {
  ControlPlaneError,
  DEFAULT_CLIENT_TIMEOUTS,
  isRetryable,
  type CallOptions,
  type ClientOptions,
  type ClientTimeouts,
} from './client-transport.js';

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

/**
 * The agent's side of the control-plane HTTP API. Every call has its own timeout; failures that
 * may pass (network, 5xx, 429) are retried with capped exponential backoff and jitter; a 401
 * triggers one re-registration and the call is repeated with the new token.
 */
export class ControlPlaneClient extends CheckpointCalls {
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

  /**
   * Tells the control plane the agent is stopping (POST /agent/stopping): the node reads offline at
   * once. One try, and no re-registration on a 401: a stopping agent must not enrol the node again.
   */
  async stopping(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.send('stopping', 'POST', '/agent/stopping', {
      timeoutMs: this.timeouts.heartbeatMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
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

  async installSteps(
    commandId: string,
    steps: InstallStepReport[],
    options: CallOptions = {},
  ): Promise<void> {
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
}
