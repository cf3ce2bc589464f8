import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { AppContext } from '../functions/core/context.js';
import { GoneConnectionError, type ConnectionSender } from '../functions/ports/connections.js';
import { closeConnection, openConnection, pushPeriodic, snapshot } from '../functions/realtime/session.js';

/** The local adapter of the send port: this process's open sockets by connection id. */
export class LocalSockets implements ConnectionSender {
  readonly sockets = new Map<string, WebSocket>();
  /** Upgrades between their record's save and their socket's entry here. */
  opening = 0;

  idle(): boolean {
    return this.sockets.size === 0 && this.opening === 0;
  }

  async send(connectionId: string, data: string): Promise<void> {
    const ws = this.sockets.get(connectionId);
    if (!ws || ws.readyState !== WebSocket.OPEN) throw new GoneConnectionError(connectionId);
    await new Promise<void>((resolve, reject) =>
      ws.send(data, (error) => (error ? reject(new GoneConnectionError(connectionId)) : resolve())),
    );
  }

  async close(connectionId: string, code: number, reason: string): Promise<void> {
    this.sockets.get(connectionId)?.close(code, reason);
  }
}

/**
 * The WebSocket API on the local HTTP server's port: `upgrade` requests under /ws become
 * connections recorded in the table (as API Gateway's `$connect` does), frames go through the
 * same port as on AWS, and a timer plays the minute schedule's push.
 */
export function attachWebSockets(
  server: Server,
  ctx: AppContext,
  sockets: LocalSockets,
): { stop: () => Promise<void> } {
  const wss = new WebSocketServer({ noServer: true });
  const removals = new Set<Promise<void>>();
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws' && !url.pathname.startsWith('/ws/')) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    void accept(req, socket, head, url);
  };
  const accept = async (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => {
    const connectionId = randomUUID();
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]),
    );
    let opened: Awaited<ReturnType<typeof openConnection>>;
    // From before its record is saved until its socket is in the map: a broadcast meanwhile looks.
    sockets.opening++;
    try {
      opened = await openConnection(ctx, connectionId, {
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
      });
    } catch (error) {
      sockets.opening--;
      ctx.logger.error('websocket connect failed', { error: error as Error });
      socket.end('HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    let settled = false;
    const settle = () => {
      if (!settled) sockets.opening--;
      settled = true;
    };
    // A client gone during the save never upgrades: its close (already past, or to come) ends it.
    if (socket.destroyed) settle();
    else socket.once('close', settle);
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle();
      // A refusal completes the handshake so the client can read the close code (4404 ...) and reason.
      if (!opened.ok) {
        ws.close(opened.closeCode, opened.reason);
        return;
      }
      const subscription = opened.subscription;
      sockets.sockets.set(connectionId, ws);
      // As API Gateway: past 2 h a connection's record expires and fan-out no longer reaches it.
      const limit = setTimeout(
        () => ws.close(1001, 'connection reached its time limit'),
        ctx.config.WS_MAX_CONNECTION_SECONDS * 1000,
      );
      limit.unref();
      ws.on('close', () => {
        clearTimeout(limit);
        sockets.sockets.delete(connectionId);
        const removal = closeConnection(ctx, connectionId)
          .catch(() => undefined)
          .finally(() => removals.delete(removal));
        removals.add(removal);
      });
      ws.on('error', () => ws.terminate());
      void snapshot(ctx, subscription, connectionId)
        .then(async (frames) => {
          for (const frame of frames) await sockets.send(connectionId, JSON.stringify(frame));
        })
        .catch((error: unknown) =>
          ctx.logger.debug('websocket snapshot not sent', { error: error as Error }),
        );
    });
  };
  server.on('upgrade', onUpgrade);

  let pushing: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (pushing) return; // a slow push (health probes) is not stacked
    pushing = pushPeriodic(ctx)
      .catch((error: unknown) => ctx.logger.warn('websocket push failed', { error: error as Error }))
      .finally(() => (pushing = undefined));
  }, ctx.config.WS_PUSH_INTERVAL_SECONDS * 1000);
  timer.unref();

  return {
    stop: async () => {
      clearInterval(timer);
      server.off('upgrade', onUpgrade);
      await pushing;
      // Upgraded sockets are no longer the HTTP server's: closed here, or server.close would wait on them.
      const closing = [...wss.clients].map(
        (ws) =>
          new Promise<void>((resolve) => {
            ws.once('close', () => resolve());
            ws.close(1001, 'server shutting down');
            setTimeout(() => {
              ws.terminate();
              resolve();
            }, 1000).unref();
          }),
      );
      await Promise.all(closing);
      await Promise.all([...removals]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
