/**
 * Pushes text frames to live WebSocket connections, by connection id. The API Gateway
 * Management API is the AWS adapter; the local runtime's `ws` server is the embedded one.
 * The connection records themselves live in the table (functions/realtime/connections.ts).
 */
export interface ConnectionSender {
  /** Delivers one text frame; throws GoneConnectionError when the peer is no longer there. */
  send(connectionId: string, data: string): Promise<void>;
  /** Closes a connection (the close code only where the runtime can set one: locally). */
  close(connectionId: string, code: number, reason: string): Promise<void>;
  /**
   * True when this runtime serves every connection itself and none is open or opening (the local
   * server), so a publisher need not look its channel up. Absent where connections live elsewhere
   * (API Gateway): the records in the table are then the only answer.
   */
  idle?(): boolean;
}

/** The connection is gone (API Gateway's GoneException, a closed socket): its record can go. */
export class GoneConnectionError extends Error {
  constructor(readonly connectionId: string) {
    super(`Connection ${connectionId} is gone`);
    this.name = 'GoneConnectionError';
  }
}
