/**
 * Task listings a page at a time: what a request reads grows with the page it returns, never with
 * the tasks stored or queued.
 *
 *  - All tasks, newest first: gsi2 `TASKS` read backwards from the cursor's sort key, with a
 *    Limit; a filter (status, worker, task type) is applied to what is read, and a request reads
 *    at most SCAN_BUDGET records, so a page with a rare filter may hold fewer than asked while its
 *    cursor says more may follow.
 *  - The queue: gsi1 `QUEUE` sorts in the scheduler's order (effective priority with aging, then
 *    FIFO: keys.queuedIndex), which does not depend on the time now, so consecutive pages are
 *    consistent; a page reads on from the cursor's sort key. Newest first, the queue is the
 *    all-tasks index's queued tasks.
 * Cursors are opaque to callers (base64url JSON of sort keys and how many items came before) and
 * checked when decoded: a malformed one is the caller's mistake (InvalidCursorError).
 */
import type { AppContext } from '../core/context.js';
import { ValidationError } from '../core/errors.js';
import { taskQueueKeys } from '../core/keys.js';
import type { TaskItem } from './tasks.js';

/** Most task records one listing request reads when a filter skips what it reads. */
export const SCAN_BUDGET = 500;
const MAX_KEY = 400;
/** `offset` without a cursor reads the tasks it skips: bounded here (a cursor reads none). */
export const MAX_OFFSET = 10_000;

export class InvalidCursorError extends Error {
  constructor() {
    super('Invalid pagination cursor');
    this.name = 'InvalidCursorError';
  }
}

export interface TaskPage {
  items: TaskItem[];
  /** Items returned by the pages before this one. */
  offset: number;
  /** For the next page; absent on the last. */
  cursor?: string;
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function decode(cursor: string): Record<string, unknown> {
  try {
    if (cursor.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCursorError();
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isKey = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_KEY;

/** gsi2 sort keys are `<created ISO>#<task id>`. */
const TASKS_KEY = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z#.+$/;

/**
 * Up to `limit` tasks matching `match` from one index partition after the sort key `after`
 * (gsi2 `TASKS` newest first, gsi1 `QUEUE` in placement order), reading at most SCAN_BUDGET
 * (or `limit`) records; `after` is the last sort key read, `more` whether any may follow.
 */
async function readIndex(
  ctx: AppContext,
  pk: string,
  index: 'gsi1' | 'gsi2',
  from: string | undefined,
  opts: { limit: number; match?: (t: TaskItem) => boolean },
): Promise<{ items: TaskItem[]; after: string | undefined; more: boolean }> {
  const ascending = index === 'gsi1';
  const sortKey = (t: TaskItem) => (ascending ? t.gsi1sk : t.gsi2sk) as string;
  const items: TaskItem[] = [];
  let after = from;
  let scanned = 0;
  let more = true;
  while (items.length < opts.limit && scanned < Math.max(SCAN_BUDGET, opts.limit)) {
    const want = Math.min(1000, Math.max(opts.limit - items.length, 25));
    const page = await ctx.store.query<TaskItem>(pk, {
      index,
      ascending,
      // Inclusive bound: the cursor's own item comes back first and is dropped.
      ...(after !== undefined
        ? { between: (ascending ? [after, '\uffff'] : ['0', after]) as [string, string] }
        : {}),
      limit: want + (after !== undefined ? 1 : 0),
    });
    const read = page.items.filter((t) => sortKey(t) !== after);
    more = page.items.length >= want + (after !== undefined ? 1 : 0) && page.cursor !== undefined;
    for (const t of read) {
      if (items.length >= opts.limit) {
        more = true;
        break;
      }
      scanned++;
      after = sortKey(t);
      if (!opts.match || opts.match(t)) items.push(t);
    }
    if (!more) break;
  }
  return { items, after, more };
}

/** Tasks newest first that `match`, `limit` of them from `cursor`. */
export async function taskPage(
  ctx: AppContext,
  opts: { limit: number; cursor?: string; match?: (t: TaskItem) => boolean },
): Promise<TaskPage> {
  let after: string | undefined;
  let offset = 0;
  if (opts.cursor !== undefined) {
    const c = decode(opts.cursor);
    if (!isKey(c.k) || !TASKS_KEY.test(c.k) || !isCount(c.n)) throw new InvalidCursorError();
    after = c.k;
    offset = c.n;
  }
  const read = await readIndex(ctx, taskQueueKeys.tasksPk, 'gsi2', after, opts);
  return {
    items: read.items,
    offset,
    ...(read.more && read.after !== undefined
      ? { cursor: encode({ k: read.after, n: offset + read.items.length }) }
      : {}),
  };
}

/** gsi1 QUEUE sort keys (keys.queuedIndex): `Q#<placement time>#<created ISO>#<task id>`. */
const QUEUE_KEY = /^Q#\d{15}#\d{4}-\d{2}-\d{2}T[\d:.]+Z#.+$/;

/**
 * Queued tasks, `limit` of them from `cursor`: in the order the scheduler serves them
 * (`schedule`: the queue index's own order), or newest first (`newest`: the all-tasks index,
 * queued ones only). Reads about `limit` tasks, at most SCAN_BUDGET where `match` skips some.
 */
export async function queuePage(
  ctx: AppContext,
  opts: {
    limit: number;
    cursor?: string;
    order: 'schedule' | 'newest';
    /** Only these; what it skips counts against SCAN_BUDGET. */
    match?: (t: TaskItem) => boolean;
  },
): Promise<TaskPage> {
  if (opts.order === 'newest') {
    // The all-tasks listing's cursor inside one of its own: neither listing takes the other's.
    let inner: string | undefined;
    if (opts.cursor !== undefined) {
      const c = decode(opts.cursor);
      if (c.o !== 'newest' || typeof c.t !== 'string') throw new InvalidCursorError();
      inner = c.t;
    }
    const match = opts.match;
    const page = await taskPage(ctx, {
      limit: opts.limit,
      ...(inner !== undefined ? { cursor: inner } : {}),
      match: (t) => t.status === 'queued' && (!match || match(t)),
    });
    return {
      items: page.items,
      offset: page.offset,
      ...(page.cursor !== undefined ? { cursor: encode({ o: 'newest', t: page.cursor }) } : {}),
    };
  }
  let after: string | undefined;
  let offset = 0;
  if (opts.cursor !== undefined) {
    const c = decode(opts.cursor);
    if (c.o !== 'schedule' || !isKey(c.k) || !QUEUE_KEY.test(c.k) || !isCount(c.n))
      throw new InvalidCursorError();
    after = c.k;
    offset = c.n;
  }
  const read = await readIndex(ctx, taskQueueKeys.queuePk, 'gsi1', after, opts);
  return {
    items: read.items,
    offset,
    ...(read.more && read.after !== undefined
      ? { cursor: encode({ o: 'schedule', k: read.after, n: offset + read.items.length }) }
      : {}),
  };
}

/**
 * One page of a listing from `cursor`, or after skipping `offset` items without one (read a
 * page at a time); a malformed cursor is a 400 in the route's error shape.
 */
export async function pageFrom(
  read: (limit: number, cursor?: string) => Promise<TaskPage>,
  limit: number,
  offset: number,
  cursor: string | undefined,
): Promise<TaskPage> {
  try {
    let from = cursor;
    if (from === undefined && offset > 0) {
      let skipped = 0;
      // At most 20 reads: past that the page starts where they reached (its `offset` says so).
      for (let i = 0; skipped < offset && i < 20; i++) {
        const skip = await read(Math.min(1000, offset - skipped), from);
        skipped += skip.items.length;
        from = skip.cursor;
        if (!from) return { items: [], offset: skipped };
      }
    }
    return await read(limit, from);
  } catch (error) {
    if (!(error instanceof InvalidCursorError)) throw error;
    throw new ValidationError(
      [{ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor', type: 'value_error' }],
      400,
    );
  }
}
