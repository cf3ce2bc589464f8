import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import type { AppContext } from '../functions/core/context.js';
import { withClientSignal } from '../functions/core/client-signal.js';
import { authorize } from '../functions/core/access.js';
import { authenticateAgent } from '../functions/nodes/auth.js';
import type { HttpEvent, HttpResult } from '../functions/core/http.js';
import type { AnyRoute } from '../functions/core/route.js';
import { Router } from '../functions/core/router.js';

/** Bodies past this are refused before any handler runs (multipart routes parse with their own, smaller limits). */
const HARD_LIMIT = 64 * 1024 * 1024;

const TEXT_TYPES = /^(application\/(json|x-www-form-urlencoded|xml)|text\/)|\+json/i;

class TooLarge extends Error {}

/**
 * Decides, from the request line and headers alone, whether the body is worth reading: an
 * unauthenticated or unroutable request gets its answer without it, and a body is read up to
 * the route's limit only.
 */
export type BodyGate = (
  method: string,
  rawPath: string,
  headers: Record<string, string>,
) => Promise<{ read: false } | { read: true; maxBytes: number }>;

/**
 * The gate of the route table: no body is read for a path no route claims or a request that
 * fails the route's API key or node credential check (the handler then answers 404, 405 or 401 in the route's
 * shape, 403 for a role too weak); other bodies up to MAX_BODY_BYTES, multipart ones up to HARD_LIMIT.
 */
export function routeGate(routes: AnyRoute[], ctx: () => Promise<AppContext>): BodyGate {
  const router = new Router(routes);
  return async (method, rawPath, headers) => {
    if (method === 'OPTIONS' || method === 'GET' || method === 'HEAD') return { read: false };
    const match = router.match(method, rawPath);
    if (match.kind !== 'found') return { read: false };
    const c = await ctx();
    try {
      if (match.route.scope === 'user') await authorize(c, headers, match.route);
      else if (match.route.scope === 'agent') await authenticateAgent(c, headers);
    } catch {
      return { read: false };
    }
    return {
      read: true,
      maxBytes: match.route.bodyType === 'multipart' ? HARD_LIMIT : c.config.MAX_BODY_BYTES,
    };
  };
}

/**
 * Reads at most `limit` bytes, plus one to tell "exactly the limit" from "more": a longer body
 * comes back cut at limit + 1 (the handler answers 413 in the route's shape). Past HARD_LIMIT
 * (routes of their own limits) it throws.
 */
function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: Error | undefined, cut = false) => {
      req.off('data', onData).off('end', onEnd).off('error', onError);
      if (error) reject(error);
      else resolve({ body: Buffer.concat(chunks), cut });
    };
    // Paused, not destroyed: the answer still goes out on this connection.
    const onData = (c: Buffer) => {
      if (size + c.length <= limit) {
        size += c.length;
        chunks.push(c);
        return;
      }
      req.pause();
      if (limit >= HARD_LIMIT) return done(new TooLarge());
      chunks.push(c.subarray(0, limit + 1 - size));
      done(undefined, true);
    };
    const onEnd = () => done(undefined);
    const onError = (error: Error) => done(error);
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

/** An API Gateway HTTP API (payload 2.0) event for a Node request, as Lambda would receive it. */
export function toEvent(req: IncomingMessage, body: Buffer, seen?: Record<string, string>): HttpEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // `seen`: the headers the gate checked, passed on as they are (its checks are keyed by them).
  const headers: Record<string, string> = seen ?? {};
  if (!seen)
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    }
  const query: Record<string, string> = {};
  url.searchParams.forEach((v, k) => (query[k] = k in query ? `${query[k]},${v}` : v));
  const isText = TEXT_TYPES.test(headers['content-type'] ?? '');
  const now = Date.now();
  const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: url.search.slice(1),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    body: body.length ? (isText ? body.toString('utf8') : body.toString('base64')) : undefined,
    isBase64Encoded: body.length > 0 && !isText,
  };
}

function lambdaContext(): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:local',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 29_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export type LambdaHttpHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** Answers a request itself (the console's files) or returns false to let the API have it. */
export type StaticFiles = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** Serves HTTP by calling the same handler that runs in Lambda. */
export function createLocalServer(
  handler: LambdaHttpHandler,
  gate?: BodyGate,
  statics?: StaticFiles,
): Server {
  return createServer(async (req: IncomingMessage, res: ServerResponse) => {
    try {
      if (statics && (await statics(req, res))) return;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
      const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
      const decision = gate
        ? await gate(req.method ?? 'GET', rawPath, headers)
        : { read: true as const, maxBytes: HARD_LIMIT };
      let body: Buffer = Buffer.alloc(0);
      // The rest of the body is never read: the connection closes after the answer.
      let unread = !decision.read;
      if (decision.read) {
        const limit = Math.min(decision.maxBytes, HARD_LIMIT);
        const declared = Number(headers['content-length'] ?? 0);
        try {
          if (declared > limit) {
            // Larger than allowed before a byte is read: the handler sees limit + 1 bytes' worth.
            if (limit >= HARD_LIMIT) throw new TooLarge();
            body = Buffer.alloc(limit + 1);
            unread = true;
          } else {
            const read = await readBody(req, limit);
            body = read.body;
            unread = read.cut;
          }
        } catch (error) {
          if (!(error instanceof TooLarge)) throw error;
          res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
          res.on('finish', () => req.destroy());
          res.end(JSON.stringify({ detail: 'Request body too large' }));
          return;
        }
      }
      // A client gone before its answer (an agent killed mid long-poll) aborts what the handler waits on.
      const gone = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const result = await withClientSignal(gone.signal, () =>
        handler(toEvent(req, body, headers), lambdaContext()),
      );
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(result.headers ?? {})) out[k] = String(v);
      const hasBody =
        Number(headers['content-length'] ?? 0) > 0 || headers['transfer-encoding'] !== undefined;
      if (unread && hasBody && !req.complete) {
        out.connection = 'close';
        res.on('finish', () => req.destroy());
      }
      res.writeHead(result.statusCode ?? 200, out);
      if (result.body === undefined) res.end();
      else res.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ detail: 'Internal Server Error' }));
      console.error(error);
    }
  });
}
