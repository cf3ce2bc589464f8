import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';

/**
 * The agent's HTTP client: node:http with keep-alive. undici (and the fetch built on it) sets up
 * a WebAssembly HTTP parser with a 16 MB memory on first use, a quarter of the idle agent's
 * private memory; the agent's calls (JSON to the control plane and to model servers) need none
 * of what it adds.
 */

// Required, not imported: an ESM import of node:http reads every export for its namespace, and
// its lazy `WebSocket` getters load Node's own undici (13 MB more resident than a require).
const require = createRequire(import.meta.url);
const { Agent: HttpAgent, request: httpRequest } = require('node:http') as typeof Http;
const { Agent: HttpsAgent, request: httpsRequest } = require('node:https') as typeof Https;

export interface HttpAnswer {
  statusCode: number;
  headers: Http.IncomingHttpHeaders;
  text: string;
}

export interface HttpCall {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Ends the call (connect, headers and body): its reason is what the call rejects with. */
  signal?: AbortSignal;
}

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 16 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 16 }),
};

export function call(url: string, options: HttpCall): Promise<HttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  return new Promise<HttpAnswer>((resolve, reject) => {
    const signal = options.signal;
    if (signal?.aborted) return reject(signal.reason as Error);
    const req = send(
      target,
      { method: options.method, headers, agent: secure ? agents.https : agents.http },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', fail);
      },
    );
    function fail(error: Error) {
      signal?.removeEventListener('abort', onAbort);
      reject(signal?.aborted ? (signal.reason as Error) : error);
    }
    function onAbort() {
      req.destroy(signal!.reason as Error);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.end(options.body);
  });
}
