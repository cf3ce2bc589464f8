import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTable } from '../../../functions/adapters/dynamo-store.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../../local/embedded-dynamo.js';

// The embedded engine's Query (local/embedded-engine.ts reads the range in batches instead of
// dynalite's streams) keeps DynamoDB's answers: order both ways, Limit and LastEvaluatedKey,
// the 1 MB page, a filter after the read (ScannedCount), COUNT, and consumed capacity.
describe('embedded engine Query (DynamoDB JSON, in process)', () => {
  let engine: EmbeddedDynamo;
  let client: DynamoDBClient;
  const TableName = 'query-test';
  const s = (v: string) => ({ S: v });
  const sk = (i: number) => `K#${String(i).padStart(3, '0')}`;
  const query = async (body: Record<string, unknown>) => {
    const out = await engine.call('Query', { TableName, ...body });
    expect(out.status).toBe(200);
    return out.body as {
      Items?: Record<string, { S?: string; N?: string }>[];
      Count: number;
      ScannedCount: number;
      LastEvaluatedKey?: Record<string, { S: string }>;
      ConsumedCapacity?: Record<string, unknown>;
    };
  };
  const keysOf = (items: Record<string, { S?: string }>[] = []) => items.map((i) => i.sk!.S);

  beforeAll(async () => {
    engine = await startEmbeddedDynamo();
    client = new DynamoDBClient({
      endpoint: engine.endpoint,
      region: 'us-east-1',
      credentials: engine.credentials,
      requestHandler: engine.requestHandler,
    });
    await ensureTable(client, TableName);
    for (let i = 0; i < 30; i++)
      await engine.call('PutItem', {
        TableName,
        Item: {
          pk: s('P'),
          sk: s(sk(i)),
          n: { N: String(i) },
          ...(i % 3 === 0 ? { gsi1pk: s('G'), gsi1sk: s(sk(100 - i)) } : {}),
        },
      });
    // Five items of 300 KB: a page stops once it holds 1 MB.
    for (let i = 0; i < 5; i++)
      await engine.call('PutItem', {
        TableName,
        Item: { pk: s('BIG'), sk: s(sk(i)), blob: s('x'.repeat(300 * 1024)) },
      });
  });
  afterAll(async () => {
    client?.destroy();
    await engine?.stop();
  });

  const inP = { KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': s('P') } };

  it('pages with Limit and ExclusiveStartKey, in order both ways', async () => {
    const first = await query({ ...inP, Limit: 12 });
    expect(keysOf(first.Items)).toEqual(Array.from({ length: 12 }, (_, i) => sk(i)));
    expect(first.LastEvaluatedKey).toEqual({ pk: s('P'), sk: s(sk(11)) });
    const rest = await query({ ...inP, ExclusiveStartKey: first.LastEvaluatedKey });
    expect(keysOf(rest.Items)).toEqual(Array.from({ length: 18 }, (_, i) => sk(i + 12)));
    expect(rest.LastEvaluatedKey).toBeUndefined();
    const back = await query({ ...inP, ScanIndexForward: false, Limit: 3 });
    expect(keysOf(back.Items)).toEqual([sk(29), sk(28), sk(27)]);
    expect(back.LastEvaluatedKey).toEqual({ pk: s('P'), sk: s(sk(27)) });
    // Exactly Limit left: DynamoDB still answers a key to go on from.
    const last = await query({ ...inP, ExclusiveStartKey: { pk: s('P'), sk: s(sk(26)) }, Limit: 3 });
    expect(keysOf(last.Items)).toEqual([sk(27), sk(28), sk(29)]);
    expect(last.LastEvaluatedKey).toEqual({ pk: s('P'), sk: s(sk(29)) });
  });

  it('narrows by the sort key, counts and filters after the read', async () => {
    const between = {
      KeyConditionExpression: 'pk = :p AND sk BETWEEN :a AND :b',
      ExpressionAttributeValues: { ':p': s('P'), ':a': s(sk(5)), ':b': s(sk(14)) },
    };
    expect(await query({ ...between, Select: 'COUNT' })).toMatchObject({ Count: 10, ScannedCount: 10 });
    expect((await query({ ...between, Select: 'COUNT' })).Items).toBeUndefined();
    const filtered = await query({
      KeyConditionExpression: 'pk = :p AND begins_with(sk, :k)',
      FilterExpression: 'n >= :min',
      ExpressionAttributeValues: { ':p': s('P'), ':k': s('K#00'), ':min': { N: '7' } },
    });
    expect(filtered).toMatchObject({ Count: 3, ScannedCount: 10 });
    expect(keysOf(filtered.Items)).toEqual([sk(7), sk(8), sk(9)]);
  });

  it('reads an index and reports its capacity', async () => {
    const out = await query({
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :g',
      ExpressionAttributeValues: { ':g': s('G') },
      ReturnConsumedCapacity: 'INDEXES',
      Limit: 4,
    });
    expect(keysOf(out.Items)).toEqual([sk(27), sk(24), sk(21), sk(18)]);
    expect(out.LastEvaluatedKey).toEqual({
      pk: s('P'),
      sk: s(sk(18)),
      gsi1pk: s('G'),
      gsi1sk: s(sk(82)),
    });
    expect(out.ConsumedCapacity).toEqual({
      CapacityUnits: 0.5,
      TableName,
      Table: { CapacityUnits: 0 },
      GlobalSecondaryIndexes: { gsi1: { CapacityUnits: 0.5 } },
    });
  });

  it('stops a page at 1 MB', async () => {
    const page = await query({
      KeyConditionExpression: 'pk = :p',
      ExpressionAttributeValues: { ':p': s('BIG') },
      ReturnConsumedCapacity: 'TOTAL',
    });
    // The fourth takes it past 1 MB: the fifth waits for the next page.
    expect(keysOf(page.Items)).toEqual([sk(0), sk(1), sk(2), sk(3)]);
    expect(page.LastEvaluatedKey).toEqual({ pk: s('BIG'), sk: s(sk(3)) });
    // 4 x 300 KB (and their keys) in 4 KB units, halved (eventually consistent).
    expect(page.ConsumedCapacity).toEqual({ CapacityUnits: 150.5, TableName });
    const next = await query({
      KeyConditionExpression: 'pk = :p',
      ExpressionAttributeValues: { ':p': s('BIG') },
      ExclusiveStartKey: page.LastEvaluatedKey,
    });
    expect(keysOf(next.Items)).toEqual([sk(4)]);
  });

  // Repeated expressions reuse their parsed trees (local/embedded-engine.ts): each call still
  // resolves against its own item, and what is invalid stays refused.
  it('applies a repeated update expression to each item anew', async () => {
    const bump = (key: string) =>
      engine.call('UpdateItem', {
        TableName,
        Key: { pk: s('C'), sk: s(key) },
        UpdateExpression:
          'SET #n = if_not_exists(#n, :zero) + :one, #l = list_append(if_not_exists(#l, :empty), :item)',
        ExpressionAttributeNames: { '#n': 'n', '#l': 'l' },
        ExpressionAttributeValues: {
          ':zero': { N: '0' },
          ':one': { N: '1' },
          ':empty': { L: [] },
          ':item': { L: [s('x')] },
        },
        ReturnValues: 'ALL_NEW',
      });
    for (let i = 0; i < 3; i++) await bump('a');
    const b = await bump('b');
    const a = await bump('a');
    expect(b.body.Attributes).toMatchObject({ n: { N: '1' }, l: { L: [s('x')] } });
    expect(a.body.Attributes).toMatchObject({ n: { N: '4' }, l: { L: [s('x'), s('x'), s('x'), s('x')] } });
  });

  it('still refuses an invalid expression after a valid one of the same text', async () => {
    const condition = (values: Record<string, unknown>) =>
      engine.call('PutItem', {
        TableName,
        Item: { pk: s('C'), sk: s('c') },
        ConditionExpression: 'attribute_not_exists(#p) OR #p = :v',
        ExpressionAttributeNames: { '#p': 'pk' },
        ExpressionAttributeValues: values,
      });
    expect((await condition({ ':v': s('C') })).status).toBe(200);
    expect((await condition({ ':v': s('C') })).status).toBe(200);
    const unused = await condition({ ':v': s('C'), ':w': s('D') });
    expect(unused.status).toBe(400);
    expect(String(unused.body.message)).toMatch(/unused in expressions/);
    const missing = await condition({ ':w': s('D') });
    expect(missing.status).toBe(400);
    expect(String(missing.body.message)).toMatch(/attribute value used in expression is not defined/);
  });
});
