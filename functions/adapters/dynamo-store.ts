import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE_KEYS } from '../core/table.js';
import { checkItem, checkUpdateValues, keyFits, tooLarge } from './item-limits.js';
import {
  ConditionFailedError,
  UnstorableError,
  type Condition,
  type CountOptions,
  type Page,
  type QueryOptions,
  type Store,
  type StoreItem,
  type UpdateSpec,
} from '../ports/store.js';

/** Builds DynamoDB expressions with generated placeholders so field names never clash with reserved words. */
class Expr {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private n = 0;
  name(field: string): string {
    const key = `#n${this.n++}`;
    this.names[key] = field;
    return key;
  }
  value(v: unknown): string {
    const key = `:v${this.n++}`;
    this.values[key] = v;
    return key;
  }
  condition(c: Condition | undefined): string | undefined {
    if (!c) return undefined;
    const clauses: string[] = [];
    if (c.notExists) clauses.push(`attribute_not_exists(${this.name('pk')})`);
    if (c.exists) clauses.push(`attribute_exists(${this.name('pk')})`);
    if (c.version !== undefined) clauses.push(`${this.name('version')} = ${this.value(c.version)}`);
    for (const [field, expected] of Object.entries(c.equals ?? {})) {
      const f = this.name(field);
      if (Array.isArray(expected)) {
        clauses.push(`${f} IN (${expected.map((e) => this.value(e)).join(', ')})`);
      } else {
        clauses.push(`${f} = ${this.value(expected)}`);
      }
    }
    for (const field of c.absent ?? []) clauses.push(`attribute_not_exists(${this.name(field)})`);
    return clauses.length ? clauses.join(' AND ') : undefined;
  }
  get attributes() {
    return {
      ...(Object.keys(this.names).length ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

const encodeCursor = (key: Record<string, unknown>) => Buffer.from(JSON.stringify(key)).toString('base64url');

function decodeCursor(cursor: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}

export class InvalidCursorError extends Error {
  constructor() {
    super('Invalid pagination cursor');
    this.name = 'InvalidCursorError';
  }
}

export class DynamoStore implements Store {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    /** Sends the item commands instead of the SDK's document client (the embedded engine's own). */
    doc?: Pick<DynamoDBDocumentClient, 'send'>,
  ) {
    this.doc = (doc ??
      DynamoDBDocumentClient.from(client, {
        marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
      })) as DynamoDBDocumentClient;
  }

  /** Turns a failed condition into a domain error carrying the stored item (read back where the engine does not return it, as dynalite). */
  private async conditionFailed(pk: string, sk: string, error: unknown): Promise<never> {
    if (error instanceof ConditionalCheckFailedException) {
      const item = error.Item
        ? (unmarshall(error.Item as Record<string, AttributeValue>) as StoreItem)
        : await this.get(pk, sk);
      throw new ConditionFailedError(pk, sk, item);
    }
    throw error;
  }

  /** The engine's own refusal of an item's size (an update can grow an item past it) as the typed error. */
  private static sizeRefused(error: unknown): never {
    if (
      error instanceof Error &&
      error.name === 'ValidationException' &&
      /size.*exceeded/i.test(error.message)
    )
      throw tooLarge();
    throw error;
  }

  async get<T extends StoreItem>(pk: string, sk: string): Promise<T | undefined> {
    // A key past DynamoDB's sizes names nothing stored (the engine would refuse the read).
    if (!keyFits(pk, sk)) return undefined;
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true }),
    );
    return out.Item as T | undefined;
  }

  async put<T extends StoreItem>(item: T, condition?: Condition): Promise<void> {
    const stored = { ...item, version: item.version ?? 1 };
    checkItem(stored);
    const expr = new Expr();
    const ConditionExpression = expr.condition(condition);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: stored,
          ConditionExpression,
          ...(ConditionExpression ? expr.attributes : {}),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) DynamoStore.sizeRefused(error);
      return this.conditionFailed(item.pk, item.sk, error);
    }
  }

  async update<T extends StoreItem>(
    pk: string,
    sk: string,
    spec: UpdateSpec,
    condition?: Condition,
  ): Promise<T> {
    if (!keyFits(pk, sk))
      throw new UnstorableError('key_too_long', 'A name or id in this request is too long to be a key');
    checkUpdateValues(Object.fromEntries(Object.entries(spec.set ?? {}).filter(([, v]) => v !== undefined)));
    const expr = new Expr();
    const sets = Object.entries(spec.set ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([f, v]) => `${expr.name(f)} = ${expr.value(v)}`);
    const adds = Object.entries(spec.add ?? {}).map(([f, v]) => `${expr.name(f)} ${expr.value(v)}`);
    adds.push(`${expr.name('version')} ${expr.value(1)}`);
    const removes = (spec.remove ?? []).map((f) => expr.name(f));
    const parts = [
      sets.length ? `SET ${sets.join(', ')}` : '',
      `ADD ${adds.join(', ')}`,
      removes.length ? `REMOVE ${removes.join(', ')}` : '',
    ];
    const ConditionExpression = expr.condition(condition ?? { exists: true });
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk, sk },
          UpdateExpression: parts.filter(Boolean).join(' '),
          ConditionExpression,
          ...expr.attributes,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return out.Attributes as T;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) DynamoStore.sizeRefused(error);
      return this.conditionFailed(pk, sk, error);
    }
  }

  async delete<T extends StoreItem>(pk: string, sk: string, condition?: Condition): Promise<T | undefined> {
    if (!keyFits(pk, sk)) {
      // Nothing is stored there: a guard that needs an item fails as it would on a missing one.
      if (condition && (condition.exists || condition.version !== undefined || condition.equals))
        throw new ConditionFailedError(pk, sk);
      return undefined;
    }
    const expr = new Expr();
    const ConditionExpression = expr.condition(condition);
    try {
      const out = await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk, sk },
          ConditionExpression,
          ...(ConditionExpression ? expr.attributes : {}),
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return out.Attributes as T | undefined;
    } catch (error) {
      return this.conditionFailed(pk, sk, error);
    }
  }

  /** The key condition of a query; undefined when no stored key can match. */
  private keyCondition(pk: string, options: QueryOptions) {
    // No stored key can be that long, or start with a prefix that long.
    if (!keyFits(pk, options.prefix || undefined)) return undefined;
    // Bounds come from ids in requests: one past the key size matches no stored key.
    if (options.between && !options.between.every((b) => keyFits(pk, b))) return undefined;
    const index = options.index ? TABLE_KEYS.indexes.find((i) => i.name === options.index) : undefined;
    const pkField = index?.partitionKey ?? TABLE_KEYS.partitionKey;
    const skField = index?.sortKey ?? TABLE_KEYS.sortKey;
    const expr = new Expr();
    let keyCondition = `${expr.name(pkField)} = ${expr.value(pk)}`;
    if (options.prefix !== undefined && options.prefix !== '') {
      keyCondition += ` AND begins_with(${expr.name(skField)}, ${expr.value(options.prefix)})`;
    } else if (options.between) {
      const f = expr.name(skField);
      keyCondition += ` AND ${f} BETWEEN ${expr.value(options.between[0])} AND ${expr.value(options.between[1])}`;
    }
    return { IndexName: index?.name, KeyConditionExpression: keyCondition, ...expr.attributes };
  }

  async query<T extends StoreItem>(pk: string, options: QueryOptions = {}): Promise<Page<T>> {
    const key = this.keyCondition(pk, options);
    if (!key) return { items: [] };
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        ...key,
        Limit: options.limit,
        ScanIndexForward: options.ascending ?? true,
        ExclusiveStartKey: options.cursor ? decodeCursor(options.cursor) : undefined,
      }),
    );
    return {
      items: (out.Items ?? []) as T[],
      ...(out.LastEvaluatedKey ? { cursor: encodeCursor(out.LastEvaluatedKey) } : {}),
    };
  }

  /**
   * Unconditional puts, 25 to a BatchWriteItem, what the engine leaves unprocessed sent again: for
   * loading many items at once (bench:scale's fleet), not for the control plane's own writes.
   */
  async putBatch(items: readonly StoreItem[]): Promise<void> {
    for (let i = 0; i < items.length; i += 25) {
      let requests = items.slice(i, i + 25).map((item) => {
        const stored = { ...item, version: item.version ?? 1 };
        checkItem(stored);
        return { PutRequest: { Item: stored } };
      });
      while (requests.length) {
        const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
        requests = (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
      }
    }
  }

  async count(pk: string, options: CountOptions = {}): Promise<number> {
    const key = this.keyCondition(pk, options);
    if (!key) return 0;
    let n = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({ TableName: this.table, ...key, Select: 'COUNT', ExclusiveStartKey: start }),
      );
      n += out.Count ?? 0;
      start = out.LastEvaluatedKey;
    } while (start);
    return n;
  }

  async ping(): Promise<void> {
    await this.client.send(new DescribeTableCommand({ TableName: this.table }));
  }
}

/** Creates the table when it is missing (local runtime and tests; the CDK stack owns it on AWS). */
export async function ensureTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
    return;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  const attr = (name: string) => ({ AttributeName: name, AttributeType: 'S' as const });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          attr(TABLE_KEYS.partitionKey),
          attr(TABLE_KEYS.sortKey),
          ...TABLE_KEYS.indexes.flatMap((i) => [attr(i.partitionKey), attr(i.sortKey)]),
        ],
        KeySchema: [
          { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: TABLE_KEYS.indexes.map((i) => ({
          IndexName: i.name,
          KeySchema: [
            { AttributeName: i.partitionKey, KeyType: 'HASH' as const },
            { AttributeName: i.sortKey, KeyType: 'RANGE' as const },
          ],
          Projection: { ProjectionType: 'ALL' as const },
        })),
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  // dynalite creates tables asynchronously: wait until ACTIVE.
  for (let i = 0; i < 100; i++) {
    const out = await client.send(new DescribeTableCommand({ TableName: table }));
    const indexesActive = (out.Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === 'ACTIVE');
    if (out.Table?.TableStatus === 'ACTIVE' && indexesActive) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true },
      }),
    );
  } catch {
    // dynalite has no UpdateTimeToLive; expired items are then filtered by readers.
  }
}
