import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import dynalite from 'dynalite';
import type { EngineCall } from './embedded-document.js';
import { installBatchedQuery, installExpressionCache } from './embedded-engine.js';

export interface EmbeddedDynamo {
  endpoint: string;
  /** The only credentials it serves: made at start, kept in this process. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * The same engine without a socket: an SDK request handler that hands each request to the
   * engine's request listener in this process (the credential check included), no HTTP on the way.
   */
  requestHandler: InProcessHandler;
  /** One DynamoDB JSON request (`GetItem`, ...) to the same listener, signed with the key id. */
  call: EngineCall;
  stop(): Promise<void>;
}

/** What the SDK's clients take as `requestHandler` (its HttpHandler shape, structurally). */
export interface InProcessHandler {
  handle(request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: unknown;
  }): Promise<{ response: { statusCode: number; headers: Record<string, string>; body: Uint8Array } }>;
  updateHttpClientConfig(): void;
  httpHandlerConfigs(): Record<string, never>;
  destroy(): void;
}

/** The access key id a SigV4 `Authorization` header signs with. */
const signedKeyId = (req: IncomingMessage) =>
  /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A DynamoDB-compatible engine inside this process (dynalite), on a loopback port only.
 * With a path, tables persist across restarts (LevelDB files); without, they live in memory.
 * dynalite takes any credentials, so another process on the machine could read the table
 * (commands, `host.exec` text); here every request must be signed with an access key id made at
 * start and never written anywhere, else it gets DynamoDB's own refusal.
 */
export async function startEmbeddedDynamo(path?: string): Promise<EmbeddedDynamo> {
  if (path) await mkdir(path, { recursive: true });
  const host = '127.0.0.1';
  const port = await freePort(host);
  const { server, direct } = openEngine({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const credentials = {
    accessKeyId: `EMBEDDED${randomBytes(16).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  const serve = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  const guarded = (req: IncomingMessage, res: ServerResponse) => {
    if (signedKeyId(req) === credentials.accessKeyId) {
      for (const listener of serve) listener(req, res);
      return;
    }
    req.resume();
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(
      JSON.stringify({
        __type: 'com.amazon.coral.service#UnrecognizedClientException',
        message: 'The security token included in the request is invalid.',
      }),
    );
  };
  server.on('request', guarded);
  const handler = inProcess(guarded);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    endpoint: `http://${host}:${port}`,
    credentials,
    requestHandler: handler,
    call: direct,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // dynalite keeps the LevelDB handle on the server object; close it so a restart can reopen it.
        const db = (server as unknown as { db?: { close?: (cb: () => void) => void } }).db;
        db?.close?.(() => undefined);
      }),
  };
}

type EngineError = { statusCode?: number; body?: Record<string, unknown> };
interface EngineModules {
  db: { create(options: object): unknown };
  validations: {
    toLowerFirst(s: string): string;
    checkTypes(data: unknown, types: unknown): unknown;
    checkValidations(data: unknown, types: unknown, custom: unknown, store: unknown): void;
  };
}

/**
 * dynalite's server, and a call into the same store that runs what its request listener runs for
 * a signed item request (the type checks, the validations, the action) without the HTTP framing
 * around it: no URL parse, request id, CRC or JSON text of the request and the answer. Only code
 * in this process can reach it; the socket keeps the credential check.
 */
function openEngine(options: Parameters<typeof dynalite>[0]): { server: Server; direct: EngineCall } {
  const require = createRequire(import.meta.url);
  const { db, validations } = {
    db: require('dynalite/db'),
    validations: require('dynalite/validations'),
  } as EngineModules;
  // The listener closes over the store dynalite makes; the same module's create hands it out too.
  const create = db.create;
  let store: unknown;
  db.create = (o: object) => (store = create.call(db, o));
  let server: Server;
  try {
    server = dynalite(options);
  } finally {
    db.create = create;
  }
  installBatchedQuery();
  installExpressionCache();
  const itemStore = cachedTables(store as EngineStore);
  type Done = (error: EngineError | null, out?: Record<string, unknown>) => void;
  type Action = (store: unknown, data: unknown, done: Done) => void;
  const actions = new Map<string, { run: Action; types: unknown; custom: unknown }>();
  const action = (operation: string) => {
    let a = actions.get(operation);
    if (!a) {
      const name = validations.toLowerFirst(operation);
      const v = require(`dynalite/validations/${name}`) as { types: unknown; custom: unknown };
      a = { run: require(`dynalite/actions/${name}`) as Action, types: v.types, custom: v.custom };
      actions.set(operation, a);
    }
    return a;
  };
  const direct: EngineCall = (operation, body) =>
    new Promise((resolve, reject) => {
      const refused = (error: EngineError) =>
        error.statusCode ? resolve({ status: error.statusCode, body: error.body ?? {} }) : reject(error);
      try {
        const a = action(operation);
        const data = validations.checkTypes(body, a.types);
        validations.checkValidations(data, a.types, a.custom, itemStore);
        a.run(itemStore, data, (error, out) =>
          error ? refused(error) : resolve({ status: 200, body: out ?? {} }),
        );
      } catch (error) {
        refused(error as EngineError);
      }
    });
  return { server, direct };
}

type TableCallback = (error: unknown, table?: { TableStatus?: string }) => void;
interface EngineStore {
  tableDb: Record<'put' | 'del' | 'batch', (...args: unknown[]) => unknown>;
  getTable(name: string, checkStatus: boolean | TableCallback, cb?: TableCallback): void;
}

/**
 * The store as the item calls see it: every item action first reads its table's description (a
 * LevelDB get and a JSON decode of the whole schema); an active table's stays here until a table
 * action writes any description (they all write through `tableDb`). Item actions only read it.
 */
function cachedTables(store: EngineStore): EngineStore {
  const active = new Map<string, { TableStatus?: string }>();
  for (const method of ['put', 'del', 'batch'] as const) {
    const write = store.tableDb[method];
    store.tableDb[method] = (...args: unknown[]) => {
      active.clear();
      return write.apply(store.tableDb, args);
    };
  }
  const getTable: EngineStore['getTable'] = (name, checkStatus, cb) => {
    const done = (typeof checkStatus === 'function' ? checkStatus : cb)!;
    const known = active.get(name);
    if (known) return done(null, known);
    store.getTable(name, Boolean(checkStatus), (error, table) => {
      if (!error && table?.TableStatus === 'ACTIVE') active.set(name, table);
      done(error, table);
    });
  };
  return Object.create(store, { getTable: { value: getTable } }) as EngineStore;
}

/**
 * Runs the engine's request listener on a request object in memory: the listener reads the
 * method, url, headers and body events and answers through setHeader/writeHead/end, which is
 * all it needs of node:http. The SDK serialises and parses as it would over a socket.
 */
function inProcess(listener: (req: IncomingMessage, res: ServerResponse) => void): InProcessHandler {
  return {
    handle: (request) =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
        const req = Object.assign(new EventEmitter(), {
          method: request.method,
          url: request.path || '/',
          headers,
          resume: () => req,
        });
        const out: Record<string, string> = {};
        const res = {
          statusCode: 200,
          contentType: undefined as string | undefined,
          setHeader: (name: string, value: unknown) => {
            out[name.toLowerCase()] = String(value);
          },
          writeHead: (status: number, head?: Record<string, string>) => {
            res.statusCode = status;
            for (const [k, v] of Object.entries(head ?? {})) out[k.toLowerCase()] = v;
          },
          end: (body?: string | Uint8Array) => {
            const bytes = typeof body === 'string' ? Buffer.from(body) : (body ?? new Uint8Array());
            resolve({ response: { statusCode: res.statusCode, headers: out, body: bytes } });
          },
        };
        try {
          listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
        } catch (error) {
          reject(error as Error);
          return;
        }
        const body = request.body;
        // A view of the SDK's bytes, not a copy (Buffer.from would first turn its adapter into a string).
        if (body instanceof Uint8Array) {
          if (body.byteLength) req.emit('data', Buffer.from(body.buffer, body.byteOffset, body.byteLength));
        } else if (typeof body === 'string' && body) req.emit('data', Buffer.from(body));
        req.emit('end');
      }),
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  };
}
