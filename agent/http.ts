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

export interface HttpAnswer {
  statusCode: number;
  headers: Http.IncomingHttpHeaders;
  text: string;
  /** The body as received (checkpoint chunks are binary). */
  bytes: Buffer;
}

export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Ends the call (connect, headers and body): its reason is what the call rejects with. */
  signal?: AbortSignal;
}

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
// node:https on the first https URL only: loading it initialises OpenSSL (about 5 MB resident),
// which an agent of a control plane on plain HTTP (the embedded runtime on a LAN) never needs.
let https: { agent: Http.Agent; request: typeof Https.request } | undefined;
function httpsClient() {
  if (!https) {
    const { Agent, request } = require('node:https') as typeof Https;
    https = { agent: new Agent({ keepAlive: true, maxSockets: 16 }), request };
  }
  return https;
}

export function call(url: string, options: HttpCall): Promise<HttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const client = secure ? httpsClient() : { agent: httpAgent, request: httpRequest };
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  return new Promise<HttpAnswer>((resolve, reject) => {
    const signal = options.signal;
    if (signal?.aborted) return reject(signal.reason as Error);
    const req = client.request(target, { method: options.method, headers, agent: client.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        const bytes = Buffer.concat(chunks);
        resolve({
          statusCode: res.statusCode ?? 0,
          headers: res.headers,
          text: bytes.toString('utf8'),
          bytes,
        });
      });
      res.on('error', fail);
    });
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
