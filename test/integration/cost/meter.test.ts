import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore, ensureTable } from '../../../functions/adapters/dynamo-store.js';
import { MemoryQueue } from '../../../functions/adapters/memory-queue.js';
import { itemSize } from '../../../functions/core/item-size.js';
import { Meter } from '../../../functions/metering/meter.js';
import {
  MeteredQueue,
  MeteredStore,
  operationLabel,
  tableIndexes,
} from '../../../functions/metering/metered-ports.js';
import { ConditionFailedError } from '../../../functions/ports/store.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../../local/embedded-dynamo.js';

describe('DynamoDB item size (the documented rules)', () => {
  it('counts names and values: strings in UTF-8, numbers by digits, maps and lists with overhead', () => {
    expect(itemSize({ pk: 'abc' })).toBe(2 + 3);
    expect(itemSize({ é: 'ü' })).toBe(2 + 2);
    // 12345: 5 significant digits → 3 bytes + 1.
    expect(itemSize({ n: 12345 })).toBe(1 + 4);
    expect(itemSize({ n: 0.00012 })).toBe(1 + 2);
    expect(itemSize({ b: true, z: null })).toBe(2 + 2);
    // List: 3 + per element 1 + value; map: 3 + per entry 1 + name + value.
    expect(itemSize({ l: ['ab', 7] })).toBe(1 + 3 + (1 + 2) + (1 + 2));
    expect(itemSize({ m: { k: 'v' } })).toBe(1 + 3 + (1 + 1 + 1));
    expect(itemSize({ x: undefined, y: 'y' })).toBe(2);
  });
});

describe('metered store over dynalite', () => {
  let engine: EmbeddedDynamo;
  let client: DynamoDBClient;
  let store: DynamoStore;
  const table = `meter-${randomUUID().slice(0, 8)}`;
  const pad = (bytes: number) => 'x'.repeat(bytes);

  beforeAll(async () => {
    engine = await startEmbeddedDynamo();
    client = new DynamoDBClient({
      endpoint: engine.endpoint,
      region: 'us-east-1',
      credentials: engine.credentials,
    });
    await ensureTable(client, table);
    store = new DynamoStore(client, table);
  });
  afterAll(async () => {
    client.destroy();
    await engine.stop();
  });

  it('charges table and GSI copies by size: put, key-moving update, failed condition, delete', async () => {
    const meter = new Meter();
    const s = new MeteredStore(store, meter);
    // ~1.5 KB on gsi1 (projection ALL): 2 units in the table, 2 in the index.
    await s.put({ pk: 'N#1', sk: 'META', gsi1pk: 'NODES', gsi1sk: 'a', blob: pad(1500) });
    expect(meter.total()).toMatchObject({ writeUnits: 4, indexWriteUnits: 2, dynamoCalls: 1 });

    // Moving the gsi1 key: a delete and a put in the index.
    meter.reset();
    await s.update('N#1', 'META', { set: { gsi1sk: 'b' } });
    expect(meter.total()).toMatchObject({ writeUnits: 2 + 2 + 2, indexWriteUnits: 4 });

    // Same key, the item grows to ~2.5 KB: the larger size, one index write.
    meter.reset();
    await s.update('N#1', 'META', { set: { more: pad(1000) } });
    expect(meter.total()).toMatchObject({ writeUnits: 3 + 3, indexWriteUnits: 3 });

    // A failed condition still costs the stored item's size, nothing in the index.
    meter.reset();
    await expect(s.put({ pk: 'N#1', sk: 'META', blob: 'y' }, { notExists: true })).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    expect(meter.total()).toMatchObject({ writeUnits: 3, indexWriteUnits: 0, dynamoCalls: 1 });

    // Reads: GetItem is strongly consistent (1 per 4 KB); queries are eventually consistent (half).
    meter.reset();
    await s.get('N#1', 'META');
    expect(meter.total().readUnits).toBe(1);
    await s.put({ pk: 'N#2', sk: 'META', gsi1pk: 'NODES', gsi1sk: 'c', blob: pad(3000) });
    meter.reset();
    const page = await s.query('NODES', { index: 'gsi1' });
    expect(page.items).toHaveLength(2);
    // ~2.5 KB + ~3 KB = one 8 KB step → 2 units, halved.
    expect(meter.total().readUnits).toBe(1);

    // Deleting an item on gsi1: its size in the table and in the index.
    meter.reset();
    await s.delete('N#1', 'META');
    expect(meter.total()).toMatchObject({ writeUnits: 3 + 3, indexWriteUnits: 3 });
  });

  it('charges a KEYS_ONLY index only when its keys or copy change', async () => {
    const meter = new Meter();
    const s = new MeteredStore(store, meter, {
      indexes: tableIndexes().map((i) =>
        i.name === 'gsi1' ? { ...i, projection: { type: 'KEYS_ONLY' } } : i,
      ),
    });
    await s.put({ pk: 'K#1', sk: 'META', gsi1pk: 'KEYS', gsi1sk: 'a', blob: pad(1500) });
    expect(meter.total()).toMatchObject({ writeUnits: 2 + 1, indexWriteUnits: 1 });
    meter.reset();
    await s.update('K#1', 'META', { set: { blob: pad(1600) } });
    expect(meter.total()).toMatchObject({ writeUnits: 2, indexWriteUnits: 0 });
    meter.reset();
    await s.update('K#1', 'META', { set: { gsi1sk: 'b' } });
    expect(meter.total()).toMatchObject({ writeUnits: 2 + 2, indexWriteUnits: 2 });
  });

  it("agrees with dynalite's own consumed capacity for the table write", async () => {
    const doc = DynamoDBDocumentClient.from(client);
    for (const bytes of [10, 900, 1100, 2047, 5000]) {
      const item = {
        pk: `S#${bytes}`,
        sk: 'META',
        n: 123456789,
        list: [1, 'two', { three: 3 }],
        blob: pad(bytes),
      };
      const meter = new Meter();
      await new MeteredStore(store, meter).put(item);
      const out = await doc.send(
        new PutCommand({ TableName: table, Item: { ...item, version: 1 }, ReturnConsumedCapacity: 'TOTAL' }),
      );
      // The item now exists: dynalite charges the larger of old and new, equal here.
      expect(meter.total().writeUnits).toBe(out.ConsumedCapacity?.CapacityUnits);
    }
  });

  it('meters SQS by 64 KB chunks and names operations by route', async () => {
    const meter = new Meter();
    const q = new MeteredQueue(new MemoryQueue(), meter);
    await q.ensure({ name: 'q' });
    await q.send('q', pad(10));
    await q.send('q', pad(64 * 1024 + 1));
    const got = await q.receive('q', { maxMessages: 10 });
    await q.receive('q', { maxMessages: 10 });
    await q.deleteBatch(
      'q',
      got.map((m) => m.receiptHandle),
    );
    expect(meter.total().sqsRequests).toBe(1 + 1 + 2 + 2 + 1 + 1);
    expect(meter.list().find((e) => e.kind === 'sqs.receive.empty')?.calls).toBe(1);
    expect(operationLabel('POST', '/agent/commands/0f8e1c2a-5b6d-4e7f-8a9b-0c1d2e3f4a5b/result')).toBe(
      'POST /agent/commands/{id}/result',
    );
  });
});
