/**
 * Issue 16: what a broadcast reads on AWS, where connections live in API Gateway and the table's
 * records are the only answer (no local socket map to say "nobody listens"). The table is on moto
 * through DynamoStore, metered; frames go through the real API Gateway adapter with an injected
 * Management API client (GoneException for the connections that left). Counts, never timings.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiGatewayConnections } from '../../../functions/adapters/apigw-connections.js';
import { DynamoStore, ensureTable } from '../../../functions/adapters/dynamo-store.js';
import type { AppContext } from '../../../functions/core/context.js';
import { itemSize } from '../../../functions/core/item-size.js';
import { realtimeKeys } from '../../../functions/core/keys.js';
import { createLogger } from '../../../functions/core/logger.js';
import { Meter } from '../../../functions/metering/meter.js';
import { MeteredStore } from '../../../functions/metering/metered-ports.js';
import {
  broadcast,
  FANOUT_PAGE_SIZE,
  getConnection,
  saveConnection,
} from '../../../functions/realtime/connections.js';
import type { StoreItem } from '../../../functions/ports/store.js';
import { describeWithMoto, testConfig } from '../../harness/services.js';

/** Posts recorded by connection id; ids in `gone` answer GoneException as API Gateway does. */
function managementApi(gone: Set<string>, posted: string[]): ApiGatewayManagementApiClient {
  return {
    send: async (command: { input: { ConnectionId?: string } }) => {
      const id = command.input.ConnectionId!;
      if (gone.has(id)) throw Object.assign(new Error('gone'), { name: 'GoneException' });
      posted.push(id);
      return {};
    },
  } as unknown as ApiGatewayManagementApiClient;
}

/**
 * Read units of a query answering `items` (as stored: version 1) in their index order, in pages of
 * FANOUT_PAGE_SIZE (eventually consistent: 0.5 per 4 KB a page).
 */
function pagedReadUnits(items: StoreItem[]): number {
  const stored = items
    .map((c) => ({ ...c, version: 1 }))
    .sort((a, b) => (String(a.gsi1sk) < String(b.gsi1sk) ? -1 : 1));
  let units = 0;
  for (let i = 0; i < Math.max(1, stored.length); i += FANOUT_PAGE_SIZE) {
    const bytes = stored.slice(i, i + FANOUT_PAGE_SIZE).reduce((s, c) => s + itemSize(c), 0);
    units += Math.max(1, Math.ceil(bytes / 4096)) * 0.5;
  }
  return units;
}

describeWithMoto('broadcast read units on the AWS path (moto table, API Gateway adapter)', () => {
  const meter = new Meter();
  const gone = new Set<string>();
  const posted: string[] = [];
  let client: DynamoDBClient;
  let inner: DynamoStore;
  let ctx: AppContext;

  /** Records of `count` connections on `channel`, loaded straight into the table (not metered). */
  const load = async (channel: string, count: number, expiresAt?: number) => {
    const now = Date.now();
    const items = Array.from({ length: count }, () => {
      const connectionId = randomUUID();
      const exp = expiresAt ?? Math.floor(now / 1000) + realtimeKeys.connectionTtlSeconds;
      return {
        ...realtimeKeys.connection(connectionId),
        ...realtimeKeys.channelIndex(channel, connectionId, exp),
        connectionId,
        channel: channel.split('#')[0]!,
        connectedAt: new Date(now).toISOString(),
        expiresAt: exp,
      };
    });
    await inner.putBatch(items);
    return items;
  };

  const unitsOf = async (fn: () => Promise<unknown>) => {
    meter.reset();
    await fn();
    return meter.total();
  };

  beforeAll(async () => {
    const config = testConfig({ TABLE_NAME: `fanout-${randomUUID().slice(0, 8)}`, LOG_LEVEL: 'SILENT' });
    client = new DynamoDBClient({
      endpoint: config.AWS_ENDPOINT_URL,
      region: config.AWS_REGION,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await ensureTable(client, config.TABLE_NAME);
    inner = new DynamoStore(client, config.TABLE_NAME);
    ctx = {
      config,
      store: new MeteredStore(inner, meter),
      logger: createLogger(config),
      now: Date.now,
      connections: new ApiGatewayConnections(
        'https://ws.example/prod',
        config.AWS_REGION,
        managementApi(gone, posted),
      ),
    } as unknown as AppContext;
    // Busy channels beside the ones broadcast to.
    await load('metrics', 600);
    await load('logs#other-node', 300);
  }, 120_000);
  afterAll(() => client?.destroy());

  it('a broadcast nobody subscribes to reads one small query, whatever the other channels and expired records hold', async () => {
    // Expired records of the channel: TTL deletion lags by days, they must not be read.
    await load('logs#quiet-node', 200, Math.floor(Date.now() / 1000) - 60);
    let built = 0;
    const units = await unitsOf(() =>
      broadcast(ctx, 'logs#quiet-node', async () => {
        built++;
        return { type: 'log' };
      }),
    );
    expect(units).toMatchObject({ readUnits: 0.5, writeUnits: 0, dynamoCalls: 1 });
    expect(built).toBe(0);
  });

  it("a broadcast with subscribers reads that channel's records only, a page at a time", async () => {
    const channel = 'logs#busy-node';
    const subscribers = await load(channel, FANOUT_PAGE_SIZE + 40);
    posted.length = 0;
    const units = await unitsOf(() => broadcast(ctx, channel, { type: 'log' }));
    expect(posted.sort()).toEqual(subscribers.map((s) => s.connectionId).sort());
    expect(units.readUnits).toBe(pagedReadUnits(subscribers));
    expect(units.dynamoCalls).toBe(2);
    expect(units.writeUnits).toBe(0);
  });

  it('a connection API Gateway answers GoneException for loses its record, and the next broadcast reads nothing more', async () => {
    const channel = 'logs#left-node';
    const [stays] = await Promise.all([
      saveConnection(ctx, 'stays-1', { channel: 'logs', nodeId: 'left-node' }),
      saveConnection(ctx, 'left-1', { channel: 'logs', nodeId: 'left-node' }),
    ]);
    gone.add('left-1');
    posted.length = 0;
    expect(await broadcast(ctx, channel, { type: 'log' })).toEqual({ delivered: 1, pruned: 1 });
    expect(posted).toEqual(['stays-1']);
    expect(await getConnection(ctx, 'left-1')).toBeUndefined();
    const units = await unitsOf(() => broadcast(ctx, channel, { type: 'log' }));
    expect(units.readUnits).toBe(pagedReadUnits([stays]));
  });
});
