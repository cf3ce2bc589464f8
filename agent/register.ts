import type { RegisterRequest, RegisterResponse } from '../protocol/messages.js';
import type { ControlPlaneClient } from './client.js';
import type { Logger } from './log.js';
import { loadRegistration, saveRegistration, type StoredRegistration } from './state.js';

export interface RegistrarOptions {
  client: ControlPlaneClient;
  stateDir: string;
  url: string;
  nodeName: string;
  buildRequest: () => Promise<RegisterRequest>;
  logger: Logger;
  /** Told after every successful registration (the channel may have moved). */
  onRegistered?: (registration: StoredRegistration) => void;
}

/**
 * Registers the node and keeps {nodeId, token, channel} in the state folder. Registering again
 * with the same name and the node's own credential is idempotent on the server, so the agent
 * registers on every start (to refresh its facts) and whenever its token is refused; a stored
 * registration lets it start during a control-plane outage.
 */
export class Registrar {
  private current: StoredRegistration | null = null;
  private readonly log: Logger;

  constructor(private readonly options: RegistrarOptions) {
    this.log = options.logger.child({ component: 'register' });
  }

  get registration(): StoredRegistration {
    if (!this.current) throw new Error('not registered');
    return this.current;
  }

  async start(signal: AbortSignal): Promise<StoredRegistration> {
    const stored = await loadRegistration(this.options.stateDir);
    const usable =
      stored && stored.url === this.options.url && stored.nodeName === this.options.nodeName ? stored : null;
    // An existing node re-registers as itself: a join token only creates nodes.
    if (usable) this.options.client.setToken(usable.token);
    try {
      // With credentials in hand, a few tries suffice; without, nothing works until it succeeds.
      return await this.register(signal, usable ? 3 : Infinity);
    } catch (error) {
      if (!usable || signal.aborted) throw error;
      this.log.warn('control plane unreachable; starting with the stored registration', {
        nodeId: usable.nodeId,
        error,
      });
      this.current = usable;
      return usable;
    }
  }

  /** Used on a 401: a fresh token under the same node name. */
  async reRegister(): Promise<void> {
    await this.register(undefined, 5);
  }

  /** Replaces the node's credential and stores the new one before using it. */
  async rotateToken(): Promise<void> {
    const current = this.registration;
    const token = await this.options.client.rotateToken();
    const next = { ...current, token };
    await saveRegistration(this.options.stateDir, next);
    this.current = next;
    this.log.info('credential rotated', { nodeId: current.nodeId });
  }

  private async register(signal: AbortSignal | undefined, attempts: number): Promise<StoredRegistration> {
    const request = await this.options.buildRequest();
    const response: RegisterResponse = await this.options.client.register(request, {
      ...(signal ? { signal } : {}),
      attempts,
    });
    const registration: StoredRegistration = {
      url: this.options.url,
      nodeName: this.options.nodeName,
      nodeId: response.nodeId,
      token: response.token,
      channel: response.channel,
      heartbeatIntervalSeconds: response.heartbeatIntervalSeconds,
      registeredAt: new Date().toISOString(),
    };
    await saveRegistration(this.options.stateDir, registration);
    this.current = registration;
    this.log.info('registered', {
      nodeId: response.nodeId,
      channel: response.channel.type,
      heartbeatIntervalSeconds: response.heartbeatIntervalSeconds,
    });
    this.options.onRegistered?.(registration);
    return registration;
  }
}
