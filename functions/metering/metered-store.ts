/**
 * DynamoDB metered in billing units
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
 * a write costs 1 unit per KB of the item, rounded up, the larger of its before and after sizes; a
 * failed conditional write still costs the size of the stored item (1 unit when there is none); each
 * GSI the item sits on costs one more write of its projected copy, a moved index key two (delete and
 * put). A read costs 1 unit per 4 KB (GetItem with ConsistentRead, as DynamoStore does) or half of
 * it (queries, always eventually consistent here), a query summing the sizes of the items it returns.
 */
import { TABLE_KEYS } from '../core/table.js';
import {
  ConditionFailedError,
  type Condition,
  type Page,
  type QueryOptions,
  type Store,
  type StoreItem,
  type UpdateSpec,
} from '../ports/store.js';
import { itemSize } from '../core/item-size.js';
import type { Meter } from './meter.js';

const KB = 1024;
const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / KB));
const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / (4 * KB))) * (consistent ? 1 : 0.5);

export type Projection = { type: 'ALL' } | { type: 'KEYS_ONLY' } | { type: 'INCLUDE'; attributes: string[] };
interface IndexShape {
  name: string;
  partitionKey: string;
  sortKey: string;
  projection: Projection;
}

/** The table's indexes with their projections, as the stack and ensureTable create them. */
export function tableIndexes(): IndexShape[] {
  return TABLE_KEYS.indexes.map((i) => ({
    name: i.name,
    partitionKey: i.partitionKey,
    sortKey: i.sortKey,
    projection: (i as { projection?: Projection }).projection ?? { type: 'ALL' },
  }));
}

/** What an item costs where the meter last saw it: its size and its index keys. */
interface Known {
  size: number;
  /** Per index: its key and the size of the projected copy, when the item sits on it. */
  indexes: Record<string, { key: string; size: number; copy: string } | undefined>;
}

export interface MeteredStoreOptions {
  indexes?: IndexShape[];
  /** GetItem reads strongly consistent (DynamoStore does). */
  consistentGet?: boolean;
}

export class MeteredStore implements Store {
  private readonly known = new Map<string, Known>();
  private readonly indexes: IndexShape[];
  private readonly consistentGet: boolean;

  constructor(
    private readonly inner: Store,
    private readonly meter: Meter,
    options: MeteredStoreOptions = {},
  ) {
    this.indexes = options.indexes ?? tableIndexes();
    this.consistentGet = options.consistentGet ?? true;
  }

  /** The index's copy of an item: its size, and its content to tell whether a write changed it. */
  private projected(item: StoreItem, index: IndexShape): { size: number; copy: string } {
    const p = index.projection;
    const keep = new Set([TABLE_KEYS.partitionKey, TABLE_KEYS.sortKey, index.partitionKey, index.sortKey]);
    if (p.type === 'INCLUDE') for (const a of p.attributes) keep.add(a);
    const copy =
      p.type === 'ALL' ? item : Object.fromEntries(Object.entries(item).filter(([k]) => keep.has(k)));
    return { size: itemSize(copy), copy: JSON.stringify(copy) };
  }

  private describe(item: StoreItem): Known {
    const indexes: Known['indexes'] = {};
    for (const index of this.indexes) {
      const pk = item[index.partitionKey];
      const sk = item[index.sortKey];
      indexes[index.name] =
        typeof pk === 'string' && typeof sk === 'string'
          ? { key: `${pk}\u0000${sk}`, ...this.projected(item, index) }
          : undefined;
    }
    return { size: itemSize(item), indexes };
  }

  private remember(pk: string, sk: string, item: StoreItem | undefined): Known | undefined {
    const id = `${pk}\u0000${sk}`;
    if (!item) {
      this.known.delete(id);
      return undefined;
    }
    const k = this.describe(item);
    this.known.set(id, k);
    return k;
  }

  /** Units of a write that went through: the table, then each index it leaves, enters or changes. */
  private chargeWrite(kind: string, before: Known | undefined, after: Known | undefined): void {
    const table = writeUnits(Math.max(before?.size ?? 0, after?.size ?? 0));
    let index = 0;
    for (const { name } of this.indexes) {
      const b = before?.indexes[name];
      const a = after?.indexes[name];
      // Same key: one write of the copy, none when the write left every projected attribute as it was.
      if (b && a && b.key === a.key) index += b.copy === a.copy ? 0 : writeUnits(a.size);
      else {
        if (b) index += writeUnits(b.size);
        if (a) index += writeUnits(a.size);
      }
    }
    this.meter.add(`dynamo.${kind}`, { writeUnits: table + index, indexWriteUnits: index, dynamoCalls: 1 });
  }

  private chargeFailedWrite(kind: string, error: unknown): void {
    if (error instanceof ConditionFailedError) {
      const stored = error.current ? itemSize(error.current) : 0;
      this.meter.add(`dynamo.${kind}.failed`, { writeUnits: writeUnits(stored), dynamoCalls: 1 });
    }
  }

  async get<T extends StoreItem>(pk: string, sk: string): Promise<T | undefined> {
    const item = await this.inner.get<T>(pk, sk);
    const k = this.remember(pk, sk, item);
    this.meter.add('dynamo.get', { readUnits: readUnits(k?.size ?? 0, this.consistentGet), dynamoCalls: 1 });
    return item;
  }

  async put<T extends StoreItem>(item: T, condition?: Condition): Promise<void> {
    const id = `${item.pk}\u0000${item.sk}`;
    const before = this.known.get(id);
    try {
      await this.inner.put(item, condition);
    } catch (error) {
      this.chargeFailedWrite('put', error);
      throw error;
    }
    const after = this.remember(item.pk, item.sk, { ...item, version: item.version ?? 1 });
    this.chargeWrite('put', before, after);
  }

  async update<T extends StoreItem>(
    pk: string,
    sk: string,
    spec: UpdateSpec,
    condition?: Condition,
  ): Promise<T> {
    const before = this.known.get(`${pk}\u0000${sk}`);
    let out: T;
    try {
      out = await this.inner.update<T>(pk, sk, spec, condition);
    } catch (error) {
      this.chargeFailedWrite('update', error);
      throw error;
    }
    const after = this.remember(pk, sk, out);
    this.chargeWrite('update', before, after);
    return out;
  }

  async delete<T extends StoreItem>(pk: string, sk: string, condition?: Condition): Promise<T | undefined> {
    let old: T | undefined;
    try {
      old = await this.inner.delete<T>(pk, sk, condition);
    } catch (error) {
      this.chargeFailedWrite('delete', error);
      throw error;
    }
    const before = old ? this.describe(old) : undefined;
    this.remember(pk, sk, undefined);
    this.chargeWrite('delete', before, undefined);
    return old;
  }

  async query<T extends StoreItem>(pk: string, options: QueryOptions = {}): Promise<Page<T>> {
    const page = await this.inner.query<T>(pk, options);
    const index = options.index ? this.indexes.find((i) => i.name === options.index) : undefined;
    let bytes = 0;
    for (const item of page.items) {
      const k = this.remember(item.pk, item.sk, item);
      bytes += index ? (k?.indexes[index.name]?.size ?? itemSize(item)) : itemSize(item);
    }
    this.meter.add(`dynamo.query${index ? `.${index.name}` : ''}`, {
      readUnits: readUnits(bytes, false),
      dynamoCalls: 1,
    });
    return page;
  }

  ping(): Promise<void> {
    return this.inner.ping(); // DescribeTable: a control-plane call, not billed
  }

  /** Sizes of the items the meter last saw whose partition key starts with `prefix`. */
  itemSizes(prefix: string): number[] {
    const out: number[] = [];
    for (const [id, k] of this.known) if (id.startsWith(prefix)) out.push(k.size);
    return out;
  }

  /** Bytes the table and its index copies hold, as the meter saw them, with DynamoDB's 100-byte per-item overhead. */
  storedBytes(): number {
    let total = 0;
    for (const k of this.known.values()) {
      total += k.size + 100;
      for (const i of Object.values(k.indexes)) if (i) total += i.size + 100;
    }
    return total;
  }
}
