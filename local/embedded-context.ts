import { join } from 'node:path';
import { createNovitaCloud } from '../functions/adapters/http-novita-cloud.js';
import { BedrockChatModel } from '../functions/adapters/bedrock-chat-model.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { EmbeddedDocument } from './embedded-document.js';
import { DynamoStore, ensureTable } from '../functions/adapters/dynamo-store.js';
import { LocalBlobs } from '../functions/adapters/local-blobs.js';
import { LocalSecrets } from '../functions/adapters/local-secrets.js';
import { MemoryQueue } from '../functions/adapters/memory-queue.js';
import { StoreScheduler } from '../functions/adapters/store-scheduler.js';
import type { Config } from '../functions/core/config.js';
import type { AppContext } from '../functions/core/context.js';
import { createLogger } from '../functions/core/logger.js';
import { startEmbeddedDynamo } from './embedded-dynamo.js';
import { repairIndexes } from './embedded-repair.js';
import { LocalSockets } from './websocket-server.js';
import { tmpdir } from 'node:os';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';

/** The embedded adapters: dynalite, an in-process queue, table-backed schedules, a local folder. */
export async function createEmbeddedContext(
  config: Config,
  options: { dataDir?: string; now?: () => number },
): Promise<{ ctx: AppContext; stop: () => Promise<void> }> {
  const dynamo = await startEmbeddedDynamo(options.dataDir ? join(options.dataDir, 'db') : undefined);
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: config.AWS_REGION,
    // Requests go to the engine in this process, not over loopback HTTP: no socket, no parsing.
    requestHandler: dynamo.requestHandler,
    // Its own, made at start (they also keep the SDK from searching the machine for real ones).
    credentials: dynamo.credentials,
    // The embedded engine checks the key id a request names and nothing else (embedded-dynamo.ts):
    // an HMAC over every request would be work nobody verifies.
    signer: {
      sign: async <R extends { headers: Record<string, string> }>(request: R) => {
        request.headers['x-amz-date'] = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
        request.headers['authorization'] =
          `AWS4-HMAC-SHA256 Credential=${dynamo.credentials.accessKeyId}/${config.AWS_REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=unverified`;
        return request;
      },
    },
  });
  // It only feeds the client's logger, which is none: its walk of every input and output for
  // sensitive fields is a fifth of a store call's CPU here.
  client.middlewareStack.remove('loggerMiddleware');
  // The engine in this process reads no user agent or trace header: building them is work for
  // nothing on every call.
  for (const name of ['getUserAgentMiddleware', 'recursionDetectionMiddleware'])
    client.middlewareStack.remove(name);
  const calls = trackCalls(client);
  const secrets = new LocalSecrets(options.dataDir ? join(options.dataDir, 'secrets.json') : undefined);
  // Present while a process has the folder's table open: found at start, the last one was killed.
  const openMarker = options.dataDir ? join(options.dataDir, 'db.open') : undefined;
  const logger = createLogger(config);
  try {
    await secrets.open();
    await ensureTable(client, config.TABLE_NAME);
    if (openMarker) {
      if (
        await stat(openMarker).then(
          () => true,
          () => false,
        )
      ) {
        const repaired = await repairIndexes(client, config.TABLE_NAME);
        if (repaired) logger.warn('index entries left by a killed process repaired', { items: repaired });
      }
      await writeFile(openMarker, `${process.pid}\n`);
    }
  } catch (error) {
    client.destroy();
    await dynamo.stop();
    throw error;
  }
  // Item reads and writes go to the engine as DynamoDB JSON, without the SDK's per-call middleware.
  const store = new DynamoStore(
    client,
    config.TABLE_NAME,
    new EmbeddedDocument(dynamo.call, calls.track) as unknown as Pick<DynamoDBDocumentClient, 'send'>,
  );
  const now = options.now ?? Date.now;
  const scratch = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'fleet-')));
  const ctx: AppContext = {
    config,
    store,
    queue: new MemoryQueue(now),
    scheduler: new StoreScheduler(store, config.SCHEDULE_GROUP),
    secrets,
    blobs: new LocalBlobs(join(scratch, 'artifacts')),
    logger,
    now,
    startedAt: now(),
    mode: 'embedded',
    connections: new LocalSockets(),
    novita: createNovitaCloud(config, secrets, now),
    // Without credentials or an endpoint the SDK would only go looking on the network: no model (the AI routes say so).
    ...(config.AI_ENDPOINT_URL || config.AWS_CREDENTIALS_IN_ENV
      ? { chatModel: new BedrockChatModel(config) }
      : {}),
  };
  return {
    ctx,
    stop: async () => {
      await calls.close();
      client.destroy();
      await dynamo.stop();
      if (openMarker) await rm(openMarker, { force: true });
    },
  };
}

/**
 * dynalite throws (uncaught, from a LevelDB callback) when its database closes under a request it
 * is still working on. At stop no new table call starts, and the table closes once the calls in
 * flight (handlers of requests still running) have ended, or after a few seconds.
 */
function trackCalls(client: DynamoDBClient) {
  let inFlight = 0;
  let closing = false;
  let idle: (() => void) | undefined;
  const track = async <T>(work: () => Promise<T>): Promise<T> => {
    if (closing) throw new Error('the embedded table is closed: the runtime is stopping');
    inFlight++;
    try {
      return await work();
    } finally {
      if (--inFlight === 0) idle?.();
    }
  };
  client.middlewareStack.add((next) => (args) => track(() => next(args)), {
    step: 'initialize',
    name: 'embeddedCallsInFlight',
  });
  return {
    track,
    close: async () => {
      closing = true;
      if (!inFlight) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000))),
      ]);
      clearTimeout(timer);
    },
  };
}
