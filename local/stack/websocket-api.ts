import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { InvokeResult } from './lambda.js';

export interface WebSocketApiOptions {
  apiId: string;
  stage: string;
  /** Route key (`$connect`, `$disconnect`, `$default`, an action) → the function it invokes. */
  routes: Record<string, string>;
  /** `$request.body.action` and the like: the field of a JSON frame that names its route. */
  routeSelectionExpression?: string;
  invoke: (functionLogicalId: string, event: unknown) => Promise<InvokeResult>;
  /** execute-api:ManageConnections for a Management API call (the permission checker); allowed when absent. */
  authorize?: (req: IncomingMessage, connectionId: string) => Promise<boolean>;
}

interface Connection {
  ws: WebSocket;
  connectedAt: number;
  lastActiveAt: number;
  sourceIp: string;
  userAgent: string;
  headers: Record<string, string>;
}

const id = () => `${randomBytes(11).toString('base64').slice(0, 15)}=`;

/**
 * A WebSocket API of API Gateway on the local server: the handshake at the stage's path runs the
 * `$connect` route (a non-2xx answer refuses it), frames go to the route their action selects (or
 * `$default`), a close runs `$disconnect`, and the Management API (`/@connections/{id}`) the
 * functions call to push frames, read or end a connection.
 */
export function createWebSocketApi(options: WebSocketApiOptions) {
  const wss = new WebSocketServer({ noServer: true });
  const connections = new Map<string, Connection>();
  const running = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>) => {
    running.add(p);
    void p.finally(() => running.delete(p)).catch(() => undefined);
    return p;
  };
  const selection = /^\$request\.body\.(.+)$/.exec(options.routeSelectionExpression ?? '')?.[1];

  const context = (
    connectionId: string,
    routeKey: string,
    eventType: string,
    c: Pick<Connection, 'connectedAt' | 'sourceIp' | 'userAgent'>,
    host: string,
  ) => {
    const now = Date.now();
    return {
      routeKey,
      eventType,
      extendedRequestId: id(),
      requestTime: new Date(now).toUTCString(),
      messageDirection: 'IN',
      stage: options.stage,
      connectedAt: c.connectedAt,
      requestTimeEpoch: now,
      identity: { sourceIp: c.sourceIp, userAgent: c.userAgent },
      requestId: id(),
      domainName: host,
      connectionId,
      apiId: options.apiId,
    };
  };

  const refuse = (socket: Duplex, status: number) => {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  };

  /** True when the upgrade request was for this API's stage. */
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== `/${options.stage}` && url.pathname !== `/${options.stage}/`) return false;
    void accept(req, socket, head, url);
    return true;
  };

  const accept = async (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => {
    const connectionId = id();
    const headers: Record<string, string> = {};
    const multiValueHeaders: Record<string, string[]> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const value = req.rawHeaders[i + 1]!;
      headers[name] = value;
      (multiValueHeaders[name] ??= []).push(value);
    }
    const query: Record<string, string> = {};
    const multiQuery: Record<string, string[]> = {};
    url.searchParams.forEach((v, k) => {
      query[k] = v;
      (multiQuery[k] ??= []).push(v);
    });
    const info = {
      connectedAt: Date.now(),
      sourceIp: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
      userAgent: req.headers['user-agent'] ?? '',
    };
    const host = req.headers.host ?? 'localhost';
    const target = options.routes.$connect;
    if (target) {
      const result = await track(
        options.invoke(target, {
          headers,
          multiValueHeaders,
          ...(Object.keys(query).length
            ? { queryStringParameters: query, multiValueQueryStringParameters: multiQuery }
            : {}),
          requestContext: context(connectionId, '$connect', 'CONNECT', info, host),
          isBase64Encoded: false,
        }),
      );
      const status = statusOf(result);
      if (status < 200 || status > 299) return refuse(socket, status);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection: Connection = { ws, ...info, lastActiveAt: Date.now(), headers };
      connections.set(connectionId, connection);
      ws.on('message', (data, isBinary) => {
        connection.lastActiveAt = Date.now();
        void track(
          frame(
            connectionId,
            connection,
            host,
            isBinary ? (data as Buffer).toString('base64') : data.toString(),
            isBinary,
          ),
        );
      });
      ws.on('close', (code, reason) => {
        connections.delete(connectionId);
        const route = options.routes.$disconnect;
        if (!route) return;
        void track(
          options.invoke(route, {
            headers,
            multiValueHeaders,
            requestContext: {
              ...context(connectionId, '$disconnect', 'DISCONNECT', info, host),
              disconnectStatusCode: code,
              disconnectReason: reason.toString(),
            },
            isBase64Encoded: false,
          }),
        );
      });
      ws.on('error', () => ws.terminate());
    });
  };

  const frame = async (
    connectionId: string,
    c: Connection,
    host: string,
    body: string,
    isBase64Encoded: boolean,
  ) => {
    let routeKey = '$default';
    if (selection && !isBase64Encoded) {
      try {
        const action = (JSON.parse(body) as Record<string, unknown>)[selection];
        if (typeof action === 'string' && options.routes[action]) routeKey = action;
      } catch {
        // not JSON: $default
      }
    }
    const target = options.routes[routeKey];
    const requestContext = { ...context(connectionId, routeKey, 'MESSAGE', c, host), messageId: id() };
    if (!target) {
      // What API Gateway sends back when no route matches and there is no $default.
      c.ws.send(JSON.stringify({ message: 'Forbidden', connectionId, requestId: requestContext.requestId }));
      return;
    }
    await options.invoke(target, { requestContext, body, isBase64Encoded });
  };

  /** The Management API: true when `req` was a call to it. */
  const management = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const m = new RegExp(`^(?:/${options.stage})?/@connections/([^/]+)$`).exec(path);
    if (!m) return false;
    const connectionId = decodeURIComponent(m[1]!);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (options.authorize && !(await options.authorize(req, connectionId))) {
      res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' });
      res.end(
        JSON.stringify({
          message: `not authorized to perform: execute-api:ManageConnections on ${connectionId}`,
        }),
      );
      return true;
    }
    const c = connections.get(connectionId);
    if (!c || c.ws.readyState !== WebSocket.OPEN) {
      res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' });
      res.end(JSON.stringify({ message: null }));
      return true;
    }
    if (req.method === 'POST') {
      const data = Buffer.concat(chunks);
      await new Promise<void>((resolve) => c.ws.send(data.toString('utf8'), () => resolve()));
      res.writeHead(200).end();
    } else if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ConnectedAt: new Date(c.connectedAt).toISOString(),
          Identity: { SourceIp: c.sourceIp, UserAgent: c.userAgent },
          LastActiveAt: new Date(c.lastActiveAt).toISOString(),
        }),
      );
    } else if (req.method === 'DELETE') {
      c.ws.close(1000);
      res.writeHead(204).end();
    } else {
      res.writeHead(405).end();
    }
    return true;
  };

  return {
    upgrade,
    management,
    connections,
    async stop(): Promise<void> {
      for (const c of connections.values()) c.ws.terminate();
      await Promise.allSettled([...running]);
      // $disconnect of the sockets just ended.
      await Promise.allSettled([...running]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** The status a route's integration answered: its statusCode, 200 when it gave none, 500 on error. */
function statusOf(result: InvokeResult): number {
  if (!result.ok) return 500;
  try {
    const value = JSON.parse(result.payload) as { statusCode?: unknown } | null;
    if (value && typeof value === 'object' && 'statusCode' in value) return Number(value.statusCode) || 500;
  } catch {
    return 500;
  }
  return 200;
}
