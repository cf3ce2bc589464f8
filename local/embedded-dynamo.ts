import { createServer, type Server } from 'node:net';
import { mkdir } from 'node:fs/promises';
import dynalite from 'dynalite';

export interface EmbeddedDynamo {
  endpoint: string;
  stop(): Promise<void>;
}

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
 */
export async function startEmbeddedDynamo(path?: string): Promise<EmbeddedDynamo> {
  if (path) await mkdir(path, { recursive: true });
  const host = '127.0.0.1';
  const port = await freePort(host);
  const server: Server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    endpoint: `http://${host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // dynalite keeps the LevelDB handle on the server object; close it so a restart can reopen it.
        const db = (server as unknown as { db?: { close?: (cb: () => void) => void } }).db;
        db?.close?.(() => undefined);
      }),
  };
}
