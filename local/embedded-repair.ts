import { isDeepStrictEqual } from 'node:util';
import {
  DeleteItemCommand,
  PutItemCommand,
  ScanCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TABLE_KEYS } from '../functions/core/table.js';

type Item = Record<string, AttributeValue>;

async function scanAll(client: DynamoDBClient, table: string, index?: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        ...(index ? { IndexName: index } : { ConsistentRead: true }),
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

const keyOf = (item: Item) => JSON.stringify([item[TABLE_KEYS.partitionKey]?.S, item[TABLE_KEYS.sortKey]?.S]);

/**
 * dynalite writes an item's index entries first and the item itself after, in separate LevelDB
 * writes: a process killed in between leaves an index that disagrees with its table (a copy only
 * a query sees, an update only a query sees, a delete only the item outlived). DynamoDB itself
 * never shows that, and the state never heals: a write that was not acknowledged may only be
 * there or not. After a start that follows a crash, each index is made to say what the table
 * says again, through the API (so dynalite keeps every index in step): a stray entry is written
 * back as an item and then replaced by the table's item (or deleted, when the table has none),
 * and an item missing from an index is written again. Returns the items repaired.
 */
export async function repairIndexes(client: DynamoDBClient, table: string): Promise<number> {
  const base = new Map((await scanAll(client, table)).map((i) => [keyOf(i), i]));
  const repaired = new Set<string>();
  const put = (item: Item) => client.send(new PutItemCommand({ TableName: table, Item: item }));
  for (const index of TABLE_KEYS.indexes) {
    const entries = new Map<string, Item[]>();
    for (const e of await scanAll(client, table, index.name))
      entries.set(keyOf(e), [...(entries.get(keyOf(e)) ?? []), e]);
    const indexed = (i: Item) => i[index.partitionKey] !== undefined && i[index.sortKey] !== undefined;
    for (const key of new Set([...base.keys(), ...entries.keys()])) {
      const item = base.get(key);
      const found = entries.get(key) ?? [];
      const strays = found.filter((e) => !item || !isDeepStrictEqual(e, item));
      const missing = item !== undefined && indexed(item) && !found.some((e) => isDeepStrictEqual(e, item));
      if (!strays.length && !missing) continue;
      repaired.add(key);
      for (const stray of strays) {
        // Written as the item, the stray entry becomes the item's own: the next write replaces it.
        await put(stray);
        if (item) await put(item);
        else
          await client.send(
            new DeleteItemCommand({
              TableName: table,
              Key: {
                [TABLE_KEYS.partitionKey]: stray[TABLE_KEYS.partitionKey]!,
                [TABLE_KEYS.sortKey]: stray[TABLE_KEYS.sortKey]!,
              },
            }),
          );
      }
      if (missing && !strays.length) await put(item);
    }
  }
  return repaired.size;
}
