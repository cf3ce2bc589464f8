import { randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener } from 'node:http';
import { createServer, type Server } from 'node:net';
import { mkdir } from 'node:fs/promises';
import dynalite from 'dynalite';

export interface EmbeddedDynamo {
  endpoint: string;
  /** The only credentials it serves: made at start, kept in this process. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
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
  const server: Server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const credentials = {
    accessKeyId: `EMBEDDED${randomBytes(16).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  const serve = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: Parameters<RequestListener>[1]) => {
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
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    endpoint: `http://${host}:${port}`,
    credentials,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // dynalite keeps the LevelDB handle on the server object; close it so a restart can reopen it.
        const db = (server as unknown as { db?: { close?: (cb: () => void) => void } }).db;
        db?.close?.(() => undefined);
      }),
  };
}
