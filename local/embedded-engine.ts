import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * dynalite's `queryTable` (what its Query action runs once it has checked the request and turned
 * the key condition into a LevelDB range) without the streams around the read: its own walks the
 * range through a Readable, a `lazy` wrapper and their events, about 0.3 ms of CPU a query before
 * the first item. This one reads the same range from the same LevelDB in batches and keeps the
 * rest as dynalite has it: the Limit and 1 MB page, the filter after the read, LastEvaluatedKey,
 * projection, Count and ConsumedCapacity. A query that must fetch from the table (an index not
 * projecting ALL) keeps dynalite's. Installed once in the process, for every engine in it.
 */

type Item = Record<string, unknown>;
type Callback = (error: unknown, result?: Item) => void;
interface Data {
  TableName: string;
  IndexName?: string;
  Limit?: number;
  Select?: string;
  ConsistentRead?: boolean;
  ReturnConsumedCapacity?: string;
  QueryFilter?: unknown;
  ScanFilter?: unknown;
  ConditionalOperator?: unknown;
  AttributesToGet?: string[];
  _filter?: { expression: unknown };
  _projection?: { paths: unknown };
}
interface Range {
  reverse?: boolean;
  limit?: number;
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
}
interface Store {
  db: { values(options: object): { nextv(size: number): Promise<Item[]>; close(): Promise<void> } };
}
interface Table {
  KeySchema: { AttributeName: string }[];
}
type QueryTable = (
  store: Store,
  table: Table,
  data: Data,
  opts: Range,
  isLocal: boolean,
  fetchFromItemDb: boolean,
  startKeyNames: string[],
  cb: Callback,
) => void;
interface DbModule {
  queryTable: QueryTable & { batched?: true };
  itemSize(item: Item, compress?: boolean, addMetaSize?: boolean, rangeKey?: string): number;
  matchesExprFilter(item: Item, expression: unknown): boolean;
  matchesFilter(item: Item, filter: unknown, operator: unknown): boolean;
  mapPaths(paths: unknown, item: Item): Item;
}

const PAGE_BYTES = 1024 * 1024;
const BATCH = 64;

export function installBatchedQuery(): void {
  const db = require('dynalite/db') as DbModule;
  if (db.queryTable.batched) return;
  const streamed = db.queryTable;
  const batched: QueryTable = (store, table, data, opts, isLocal, fetchFromItemDb, startKeyNames, cb) => {
    if (fetchFromItemDb) {
      streamed(store, table, data, opts, isLocal, fetchFromItemDb, startKeyNames, cb);
      return;
    }
    read(store, table, data, opts, isLocal, startKeyNames).then(
      (result) => cb(null, result),
      (error: unknown) => cb(error),
    );
  };
  db.queryTable = Object.assign(batched, { batched: true as const });

  async function read(
    store: Store,
    table: Table,
    data: Data,
    opts: Range,
    isLocal: boolean,
    startKeyNames: string[],
  ): Promise<Item> {
    // The sub-database's prefix and its default bounds, as dynalite's prefixed wrapper adds them.
    const prefix = data.IndexName
      ? `index-${isLocal ? 'local' : 'global'}~${data.TableName}~${data.IndexName}~`
      : `item-${data.TableName}~`;
    const range: Range = { reverse: opts.reverse ?? false, limit: opts.limit ?? -1 };
    if (opts.gte) range.gte = prefix + opts.gte;
    else if (opts.gt) range.gt = prefix + opts.gt;
    else range.gte = prefix;
    if (opts.lte) range.lte = prefix + opts.lte;
    else if (opts.lt) range.lt = prefix + opts.lt;
    else range.lt = prefix + '\xFF';

    const calculate = data.ReturnConsumedCapacity === 'TOTAL' || data.ReturnConsumedCapacity === 'INDEXES';
    const rangeKey = table.KeySchema[1]?.AttributeName;
    const limit = data.Limit;
    const full = (count: number, size: number) =>
      (limit !== undefined && count >= limit) || size >= PAGE_BYTES;
    let items: Item[] = [];
    let count = 0;
    let size = 0;
    let capacity = 0;
    const it = store.db.values(range);
    try {
      read: for (;;) {
        const batch = await it.nextv(BATCH);
        if (!batch.length) break;
        for (const val of batch) {
          if (full(count, size)) break read;
          if (calculate) capacity += db.itemSize(val);
          count++;
          size += db.itemSize(val, true, true, rangeKey);
          items.push(val);
        }
      }
    } finally {
      await it.close();
    }

    const lastItem = items[items.length - 1];
    const queryFilter = data.QueryFilter ?? data.ScanFilter;
    if (data._filter) {
      const expression = data._filter.expression;
      items = items.filter((val) => db.matchesExprFilter(val, expression));
    } else if (queryFilter) {
      items = items.filter((val) => db.matchesFilter(val, queryFilter, data.ConditionalOperator));
    }
    const result: Item = { ScannedCount: count };
    if (full(count, size)) {
      if (limit) items.splice(limit);
      if (lastItem)
        result.LastEvaluatedKey = Object.fromEntries(startKeyNames.map((attr) => [attr, lastItem[attr]]));
    }
    const paths = data._projection ? data._projection.paths : data.AttributesToGet;
    if (paths) items = items.map((item) => db.mapPaths(paths, item));
    result.Count = items.length;
    if (data.Select !== 'COUNT') result.Items = items;
    if (calculate) {
      const units = Math.ceil(capacity / 1024 / 4) * (data.ConsistentRead ? 1 : 0.5);
      const tableUnits = data.IndexName ? 0 : units;
      const indexUnits = data.IndexName ? units : 0;
      const consumed: Item = { CapacityUnits: tableUnits + indexUnits, TableName: data.TableName };
      if (data.ReturnConsumedCapacity === 'INDEXES') {
        consumed.Table = { CapacityUnits: tableUnits };
        if (data.IndexName)
          consumed[isLocal ? 'LocalSecondaryIndexes' : 'GlobalSecondaryIndexes'] = {
            [data.IndexName]: { CapacityUnits: indexUnits },
          };
      }
      result.ConsumedCapacity = consumed;
    }
    return result;
  }
}

type Parsed = Partial<
  Record<'_updates' | '_condition' | '_keyCondition' | '_filter' | '_projection', unknown>
>;
const PARSED = ['_updates', '_condition', '_keyCondition', '_filter', '_projection'] as const;
const EXPRESSIONS = [
  'UpdateExpression',
  'ConditionExpression',
  'KeyConditionExpression',
  'FilterExpression',
  'ProjectionExpression',
  'ExpressionAttributeNames',
  'ExpressionAttributeValues',
] as const;
const MAX_PARSED = 5000;

/**
 * dynalite parses a request's expressions (a PEG parser, with its names and values resolved into
 * the tree) on every call: a tenth of the engine's CPU here. The control plane sends the same few
 * dozen expressions, most with the same names and values again (a counter's `ADD`, a status
 * condition, a partition's key condition): a request whose expressions, names and values all
 * match an earlier valid one gets that one's trees. dynalite only reads them, except that an
 * update replaces each section's `val` with what it resolved to: those sections are copies.
 * Anything else, and every invalid request, is parsed as before.
 */
export function installExpressionCache(): void {
  const validations = require('dynalite/validations') as {
    validateExpressions: ((data: Record<string, unknown>, ...rest: unknown[]) => string | undefined) & {
      cached?: true;
    };
  };
  if (validations.validateExpressions.cached) return;
  const parse = validations.validateExpressions;
  const known = new Map<string, Parsed>();
  const cached = (data: Record<string, unknown>, ...rest: unknown[]) => {
    const key = JSON.stringify([EXPRESSIONS.map((e) => data[e]), rest]);
    const hit = known.get(key);
    if (hit) {
      Object.assign(data, hit);
      const updates = hit._updates as { sections: object[] } | undefined;
      if (updates)
        data._updates = { ...updates, sections: updates.sections.map((section) => ({ ...section })) };
      return undefined;
    }
    const error = parse(data, ...rest);
    if (error === undefined) {
      if (known.size >= MAX_PARSED) known.clear();
      const parsed: Parsed = {};
      for (const field of PARSED) if (data[field] !== undefined) parsed[field] = data[field];
      const updates = parsed._updates as { sections: object[] } | undefined;
      // Kept before this request's update resolves its sections.
      if (updates)
        parsed._updates = { ...updates, sections: updates.sections.map((section) => ({ ...section })) };
      known.set(key, parsed);
    }
    return error;
  };
  validations.validateExpressions = Object.assign(cached, { cached: true as const });
}
