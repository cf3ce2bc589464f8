/**
 * The single-table store. Every item has a partition key `pk` and sort key `sk`; two sparse
 * global secondary indexes (`gsi1`, `gsi2`) serve the other access paths. No transactions:
 * state transitions are single-item conditional writes.
 */
export interface StoreItem {
  pk: string;
  sk: string;
  gsi1pk?: string;
  gsi1sk?: string;
  gsi2pk?: string;
  gsi2sk?: string;
  /** Epoch seconds; DynamoDB TTL deletes the item some time after. */
  expiresAt?: number;
  /** Optimistic-concurrency counter, bumped by every conditional update. */
  version?: number;
  [field: string]: unknown;
}

/** A guard on the stored item; all clauses must hold. */
export interface Condition {
  /** The item must not exist yet. */
  notExists?: boolean;
  /** The item must exist. */
  exists?: boolean;
  /** The stored `version` must equal this. */
  version?: number;
  /** Each field must equal the value, or one of the values when an array is given. */
  equals?: Record<string, unknown | unknown[]>;
  /** Each field must be absent. */
  absent?: string[];
}

export interface UpdateSpec {
  set?: Record<string, unknown>;
  remove?: string[];
  /** Atomic numeric increments (negative to decrement). */
  add?: Record<string, number>;
}

export interface QueryOptions {
  index?: 'gsi1' | 'gsi2';
  /** Sort key begins with this. */
  prefix?: string;
  /** Sort key between (inclusive). */
  between?: [string, string];
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** Newest first when false. */
  ascending?: boolean;
}

/** What a count may narrow by: the partition, an index, a sort key prefix or range. */
export type CountOptions = Pick<QueryOptions, 'index' | 'prefix' | 'between'>;

export interface Page<T> {
  items: T[];
  /** Present when more items may follow. */
  cursor?: string;
}

export interface Store {
  get<T extends StoreItem>(pk: string, sk: string): Promise<T | undefined>;
  /** Writes the whole item; throws ConditionFailedError when the condition does not hold. */
  put<T extends StoreItem>(item: T, condition?: Condition): Promise<void>;
  /** Updates fields and bumps `version`; returns the new item. Throws ConditionFailedError. */
  update<T extends StoreItem>(pk: string, sk: string, spec: UpdateSpec, condition?: Condition): Promise<T>;
  /** Deletes; returns the old item, undefined when there was none. Throws ConditionFailedError. */
  delete<T extends StoreItem>(pk: string, sk: string, condition?: Condition): Promise<T | undefined>;
  query<T extends StoreItem>(pk: string, options?: QueryOptions): Promise<Page<T>>;
  /** How many items a query would return, without returning them (absent: countItems reads them). */
  count?(pk: string, options?: CountOptions): Promise<number>;
  /** Confirms the table answers; used by /health. */
  ping(): Promise<void>;
}

export class ConditionFailedError extends Error {
  constructor(
    readonly pk: string,
    readonly sk: string,
    /** The stored item when the engine returned it. */
    readonly current?: StoreItem,
  ) {
    super(`Condition failed on ${pk} / ${sk}`);
    this.name = 'ConditionFailedError';
  }
}

export const isConditionFailed = (error: unknown): error is ConditionFailedError =>
  error instanceof ConditionFailedError;

/**
 * Conditional writes whose lost condition is an outcome, not an error (other errors pass through).
 * `conditional` wraps any write: its result, or undefined when the condition did not hold.
 */
export async function conditional<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isConditionFailed(error)) return undefined;
    throw error;
  }
}

/** Puts the item when the condition holds; false when it did not. */
export async function putIf(store: Store, item: StoreItem, condition: Condition): Promise<boolean> {
  return (await conditional(store.put(item, condition).then(() => true))) ?? false;
}

/** Puts the item when no item has its key yet; false when one had. */
export function putIfAbsent(store: Store, item: StoreItem): Promise<boolean> {
  return putIf(store, item, { notExists: true });
}

/** Updates when the condition holds: the new item, or undefined when it did not. */
export function updateIf<T extends StoreItem>(
  store: Store,
  pk: string,
  sk: string,
  spec: UpdateSpec,
  condition?: Condition,
): Promise<T | undefined> {
  return conditional(store.update<T>(pk, sk, spec, condition));
}

/** Deletes when the condition holds (the item gone, or absent already); false when it did not. */
export async function deleteIf(
  store: Store,
  pk: string,
  sk: string,
  condition?: Condition,
): Promise<boolean> {
  return (await conditional(store.delete(pk, sk, condition).then(() => true))) ?? false;
}

/**
 * A write the table cannot hold: past DynamoDB's 400 KB item size, nesting limit, number range,
 * or key size. Checked before the write; the HTTP pipeline answers 413 (size) or 422/400.
 */
export class UnstorableError extends Error {
  constructor(
    readonly reason: 'item_too_large' | 'too_deep' | 'number_out_of_range' | 'key_too_long',
    message: string,
  ) {
    super(message);
    this.name = 'UnstorableError';
  }
}

/** Reads every page of a query; for small partitions only. */
/** The items a query matches, counted by the store where it can (DynamoDB's Select COUNT). */
export async function countItems(store: Store, pk: string, options: CountOptions = {}): Promise<number> {
  if (store.count) return store.count(pk, options);
  return (await queryAll(store, pk, options)).length;
}

export async function queryAll<T extends StoreItem>(
  store: Store,
  pk: string,
  options: Omit<QueryOptions, 'cursor'> = {},
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.query<T>(pk, { ...options, cursor });
    items.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return items;
}
