import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore, ensureTable, InvalidCursorError } from '../../../functions/adapters/dynamo-store.js';
import {
  conditional,
  ConditionFailedError,
  deleteIf,
  putIf,
  putIfAbsent,
  queryAll,
  UnstorableError,
  updateIf,
  type StoreItem,
} from '../../../functions/ports/store.js';
import { EmbeddedDocument } from '../../../local/embedded-document.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../../local/embedded-dynamo.js';

interface Backend {
  name: string;
  setup(): Promise<{ client: DynamoDBClient; doc?: EmbeddedDocument; stop(): Promise<void> }>;
}

const moto = process.env.AWS_ENDPOINT_URL;
if (!moto && process.env.CI === 'true') throw new Error('CI=true but AWS_ENDPOINT_URL is not set: the moto suite cannot be skipped');

const backends: Backend[] = [
  {
    name: 'dynalite (embedded)',
    async setup() {
      const engine: EmbeddedDynamo = await startEmbeddedDynamo();
      const client = new DynamoDBClient({
        endpoint: engine.endpoint,
        region: 'us-east-1',
        credentials: engine.credentials,
      });
      return { client, stop: async () => (client.destroy(), engine.stop()) };
    },
  },
  {
    // What the embedded runtime uses: item commands straight to the engine's listener, no SDK.
    name: 'dynalite (embedded, in-process document client)',
    async setup() {
      const engine: EmbeddedDynamo = await startEmbeddedDynamo();
      const client = new DynamoDBClient({
        endpoint: engine.endpoint,
        region: 'us-east-1',
        credentials: engine.credentials,
        requestHandler: engine.requestHandler,
      });
      return { client, doc: new EmbeddedDocument(engine.call), stop: async () => (client.destroy(), engine.stop()) };
    },
  },
  {
    name: 'moto (DynamoDB API)',
    async setup() {
      const client = new DynamoDBClient({
        endpoint: moto,
        region: process.env.AWS_REGION ?? 'us-east-1',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      return { client, stop: async () => client.destroy() };
    },
  },
];

describe.each(backends)('DynamoStore on $name', (backend) => {
  const skip = backend.name.startsWith('moto') && !moto;
  let store: DynamoStore;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    if (skip) return;
    const { client, doc, stop: s } = await backend.setup();
    stop = s;
    const table = `store-test-${randomUUID().slice(0, 8)}`;
    await ensureTable(client, table);
    store = new DynamoStore(client, table, doc as ConstructorParameters<typeof DynamoStore>[2]);
  });
  afterAll(async () => {
    if (!skip) await stop();
  });

  it.skipIf(skip)('creates once: a second notExists put conflicts and returns the stored item', async () => {
    await store.put({ pk: 'NODE#1', sk: 'META', name: 'a' }, { notExists: true });
    const err = await store.put({ pk: 'NODE#1', sk: 'META', name: 'b' }, { notExists: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConditionFailedError);
    expect((err as ConditionFailedError).current).toMatchObject({ name: 'a' });
    expect(await store.get('NODE#1', 'META')).toMatchObject({ name: 'a', version: 1 });
  });

  it.skipIf(skip)('guards state transitions with version and field conditions', async () => {
    await store.put({ pk: 'JOB#1', sk: 'META', status: 'pending' });
    const updated = await store.update<StoreItem>('JOB#1', 'META', { set: { status: 'running' } }, { equals: { status: ['pending', 'retrying'] } });
    expect(updated).toMatchObject({ status: 'running', version: 2 });
    await expect(
      store.update('JOB#1', 'META', { set: { status: 'running' } }, { equals: { status: 'pending' } }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    await expect(store.update('JOB#1', 'META', { set: { status: 'x' } }, { version: 1 })).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await store.update('JOB#1', 'META', { set: { status: 'completed' } }, { version: 2 })).toMatchObject({ status: 'completed', version: 3 });
  });

  it.skipIf(skip)('lets exactly one of many concurrent conditional updates win', async () => {
    await store.put({ pk: 'TASK#1', sk: 'META', status: 'queued' });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        store.update('TASK#1', 'META', { set: { status: 'placed', node: `n${i}` } }, { equals: { status: 'queued' } }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof ConditionFailedError)).toBe(true);
  });

  it.skipIf(skip)('does not create an item when updating a missing one', async () => {
    await expect(store.update('NOPE', 'META', { set: { a: 1 } })).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await store.get('NOPE', 'META')).toBeUndefined();
  });

  it.skipIf(skip)('counts atomically under concurrency', async () => {
    await store.put({ pk: 'STATS', sk: 'C', running: 0 });
    await Promise.all(Array.from({ length: 20 }, () => store.update('STATS', 'C', { add: { running: 1 } })));
    await Promise.all(Array.from({ length: 5 }, () => store.update('STATS', 'C', { add: { running: -1 } })));
    expect(await store.get('STATS', 'C')).toMatchObject({ running: 15 });
  });

  it.skipIf(skip)('deletes conditionally and reports what it deleted', async () => {
    await store.put({ pk: 'D', sk: 'META', status: 'running' });
    await expect(store.delete('D', 'META', { equals: { status: 'pending' } })).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await store.delete('D', 'META', { equals: { status: 'running' } })).toMatchObject({ status: 'running' });
    expect(await store.delete('D', 'META')).toBeUndefined();
  });

  it.skipIf(skip)('pages through a partition with cursors, in both orders, and by prefix', async () => {
    for (let i = 0; i < 25; i++) {
      await store.put({ pk: 'P', sk: `RUN#${String(i).padStart(3, '0')}`, i });
    }
    await store.put({ pk: 'P', sk: 'META' });
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.query<StoreItem & { i: number }>('P', { prefix: 'RUN#', limit: 10, cursor });
      seen.push(...page.items.map((x) => x.i));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(pages).toBeGreaterThanOrEqual(3);
    const newest = await store.query<StoreItem & { i: number }>('P', { prefix: 'RUN#', limit: 3, ascending: false });
    expect(newest.items.map((x) => x.i)).toEqual([24, 23, 22]);
    const between = await store.query<StoreItem & { i: number }>('P', { between: ['RUN#005', 'RUN#007'] });
    expect(between.items.map((x) => x.i)).toEqual([5, 6, 7]);
  });

  it.skipIf(skip)('queries the secondary indexes and leaves items out of them when their keys are removed', async () => {
    await store.put({ pk: 'TASK#a', sk: 'META', gsi1pk: 'QUEUE', gsi1sk: '500#2' });
    await store.put({ pk: 'TASK#b', sk: 'META', gsi1pk: 'QUEUE', gsi1sk: '100#1' });
    await store.put({ pk: 'TASK#c', sk: 'META', gsi1pk: 'QUEUE', gsi1sk: '500#1' });
    const queued = await queryAll<StoreItem>(store, 'QUEUE', { index: 'gsi1' });
    expect(queued.map((x) => x.pk)).toEqual(['TASK#b', 'TASK#c', 'TASK#a']);
    await store.update('TASK#b', 'META', { remove: ['gsi1pk', 'gsi1sk'], set: { status: 'placed' } });
    const after = await queryAll<StoreItem>(store, 'QUEUE', { index: 'gsi1' });
    expect(after.map((x) => x.pk)).toEqual(['TASK#c', 'TASK#a']);
  });

  it.skipIf(skip)('rejects a forged cursor', async () => {
    await expect(store.query('P', { cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it.skipIf(skip)('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it.skipIf(skip)('refuses what DynamoDB cannot hold with a typed error before the write, and stores what it can', async () => {
    const reason = async (write: Promise<unknown>) =>
      write.then(
        () => 'stored',
        (e: unknown) => (e instanceof UnstorableError ? e.reason : String(e)),
      );
    // Under 400 KB is stored (moto counts a little more than DynamoDB: its own refusal maps to the same error).
    expect(await reason(store.put({ pk: 'BIG', sk: 'A', blob: 'x'.repeat(390 * 1024) }))).toBe('stored');
    expect(await reason(store.put({ pk: 'BIG', sk: 'B', blob: 'x'.repeat(400 * 1024) }))).toBe('item_too_large');
    expect(await reason(store.put({ pk: 'BIG', sk: 'C', list: Array(140_000).fill(1) }))).toBe('item_too_large');
    expect(await reason(store.update('BIG', 'A', { set: { more: 'y'.repeat(401 * 1024) } }))).toBe('item_too_large');
    // An update that grows the item past the limit is refused by the engine, mapped to the same error.
    expect(await reason(store.update('BIG', 'A', { set: { more: 'y'.repeat(20 * 1024) } }))).toBe('item_too_large');
    expect((await store.get<StoreItem & { more?: string }>('BIG', 'A'))?.more).toBeUndefined();

    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(await reason(store.put({ pk: 'DEEP', sk: 'A', deep }))).toBe('too_deep');
    expect(await reason(store.put({ pk: 'NUM', sk: 'A', n: 2 ** 60 }))).toBe('number_out_of_range');
    expect(await reason(store.put({ pk: 'NUM', sk: 'A', n: 1e-200 }))).toBe('number_out_of_range');
    expect(await reason(store.put({ pk: 'K'.repeat(2049), sk: 'A' }))).toBe('key_too_long');
    expect(await reason(store.put({ pk: 'K', sk: 'é'.repeat(513) }))).toBe('key_too_long');
    expect(await reason(store.put({ pk: 'K', sk: 'A', gsi1pk: 'G', gsi1sk: '' }))).toBe('key_too_long');
    // Reads of keys no item can have find nothing.
    expect(await store.get('K'.repeat(3000), 'A')).toBeUndefined();
    expect((await store.query('K'.repeat(3000))).items).toEqual([]);
    expect((await store.query('CREDS', { index: 'gsi1', between: ['x'.repeat(2000), 'x'.repeat(2000)] })).items).toEqual([]);
    expect(await store.delete('K'.repeat(3000), 'A')).toBeUndefined();
    await expect(store.delete('K'.repeat(3000), 'A', { exists: true })).rejects.toBeInstanceOf(ConditionFailedError);
  });

  it.skipIf(skip)(
    'conditional writes answer whether their condition held; other errors still throw',
    async () => {
      // Prepare
      const item = { pk: 'HELPER#1', sk: 'META', state: 'queued' };

      // Act and assess: created once, then refused without an exception.
      expect(await putIfAbsent(store, item)).toBe(true);
      expect(await putIfAbsent(store, { ...item, state: 'other' })).toBe(false);
      expect(await putIf(store, { ...item, state: 'running' }, { equals: { state: 'done' } })).toBe(false);
      expect(await store.get('HELPER#1', 'META')).toMatchObject({ state: 'queued' });

      // An update that holds returns the new item; one that does not returns undefined and changes nothing.
      expect(
        await updateIf<StoreItem>(
          store,
          'HELPER#1',
          'META',
          { set: { state: 'running' } },
          { equals: { state: 'queued' } },
        ),
      ).toMatchObject({ state: 'running' });
      expect(
        await updateIf(
          store,
          'HELPER#1',
          'META',
          { set: { state: 'done' } },
          { equals: { state: 'queued' } },
        ),
      ).toBeUndefined();
      expect(await store.get('HELPER#1', 'META')).toMatchObject({ state: 'running' });

      // A delete: false when the condition fails, true when it holds (and again when the item is gone already).
      expect(await deleteIf(store, 'HELPER#1', 'META', { equals: { state: 'queued' } })).toBe(false);
      expect(await deleteIf(store, 'HELPER#1', 'META', { equals: { state: 'running' } })).toBe(true);
      expect(await deleteIf(store, 'HELPER#1', 'META')).toBe(true);
      expect(await store.get('HELPER#1', 'META')).toBeUndefined();

      // `conditional` wraps any write; an error that is not a lost condition is not swallowed.
      expect(await conditional(store.put(item, { exists: true }))).toBeUndefined();
      await expect(conditional(store.put({ pk: 'K'.repeat(2049), sk: 'A' }))).rejects.toBeInstanceOf(
        UnstorableError,
      );
    },
  );
});
