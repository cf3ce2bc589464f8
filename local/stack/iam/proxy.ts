/**
 * The checker's HTTP plumbing: HTTP/1.1 and HTTP/2 callers on one port, calls forwarded to the
 * emulator unchanged, and the AccessDenied answer of each protocol for a denied call.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0');

/**
 * The socket as a stream that starts with the bytes already read. The HTTP/2 session reads its
 * socket natively, past anything unshifted, so it gets this JS stream instead.
 */
export function replay(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _encoding, done) => void socket.write(chunk, done),
    final: (done) => void socket.end(done),
    destroy: (error, done) => {
      socket.destroy(error ?? undefined);
      done(error);
    },
  });
  duplex.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (error) => duplex.destroy(error));
  return duplex;
}

/** What the handler needs of an HTTP/1.1 or an HTTP/2 compatibility request and response. */
export interface Incoming {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
}
export interface Outgoing extends NodeJS.WritableStream {
  headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
}

/** HTTP/2 pseudo-headers out, `:authority` as Host: what the HTTP/1.1 upstream and the parser expect. */
export function plainHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) out[k] = v;
  const authority = headers[':authority'];
  if (!out.host && typeof authority === 'string') out.host = authority;
  return out;
}

/** Headers HTTP/2 forbids in a response; harmless to drop for HTTP/1.1 (Node frames the body itself). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

/**
 * Sends the request on unchanged (Host and signature included) and streams the answer back;
 * `seen` also gets the whole answer (STS: the credentials an AssumeRole vended).
 */
export function forward(
  upstream: string,
  req: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer },
  res: Outgoing,
  seen?: (status: number, body: Buffer) => void,
): Promise<void> {
  const target = new URL(upstream);
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      {
        host: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: req.url,
        headers: forwardedHeaders(req.headers, req.body.length),
      },
      (answer) => {
        const headers = { ...answer.headers };
        for (const h of HOP_BY_HOP) delete headers[h];
        res.writeHead(answer.statusCode ?? 502, headers);
        const chunks: Buffer[] = [];
        if (seen) answer.on('data', (c: Buffer) => chunks.push(c));
        answer.pipe(res);
        answer.on('end', () => {
          seen?.(answer.statusCode ?? 502, Buffer.concat(chunks));
          resolve();
        });
        answer.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(req.body);
  });
}

/** The body is buffered: it goes with its length, and without waiting for a 100 Continue. */
function forwardedHeaders(headers: IncomingHttpHeaders, length: number): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...headers, 'content-length': String(length) };
  delete out['transfer-encoding'];
  delete out.expect;
  return out;
}

/** The AccessDenied answer of the request's protocol, so the SDK raises what AWS would make it raise. */
/** What the AccessDenied message names (a checked call). */
export interface Denied {
  function: string;
  action: string;
  resource: string;
  reason?: string;
}

export function deny(res: Outgoing, method: string, service: string | undefined, call: Denied): void {
  const message = `User: ${call.function} is not authorized to perform: ${call.action} on resource: ${call.resource} (checked locally: ${call.reason ?? 'denied'})`;
  const requestId = createHash('sha1').update(`${Date.now()}${Math.random()}`).digest('hex').slice(0, 32);
  const xml = (body: string) => {
    res.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': requestId });
    if (method === 'HEAD') res.end();
    else res.end(body);
  };
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  switch (service) {
    case 's3':
      return xml(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${escape(message)}</Message><RequestId>${requestId}</RequestId></Error>`,
      );
    case 'sts':
      return xml(
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${escape(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    case 'scheduler':
    case 'bedrock':
      // REST JSON: the error type travels in x-amzn-ErrorType.
      res.writeHead(403, {
        'content-type': 'application/json',
        'x-amzn-errortype': 'AccessDeniedException',
        'x-amzn-requestid': requestId,
      });
      return void res.end(JSON.stringify({ message, Message: message }));
    default:
      // JSON 1.0/1.1 (DynamoDB, SQS, SSM): 400 with __type, as those services answer AccessDenied.
      res.writeHead(400, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': requestId,
        // SQS's JSON protocol also names the query-protocol code, which the SDK prefers when present.
        ...(service === 'sqs' ? { 'x-amzn-query-error': 'AccessDenied;Sender' } : {}),
      });
      return void res.end(
        JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message }),
      );
  }
}
