/**
 * The rows of a paged listing (sorted by one key, read by cursor) and where its pages start, so a
 * refresh can read one page and put it in place of the rows it now covers: no row shown twice,
 * none lost when nodes come or go between the pages' reads.
 */

/** Where a page starts: its cursor (null for the first) and the key of the row just before it. */
export interface PageStart {
  cursor: string | null;
  after: string | null;
}

export interface Listing<T> {
  /** In the listing's order. */
  rows: T[];
  /** The loaded pages' starts, in order; the first is the listing's start. */
  starts: PageStart[];
  /** The first page not read yet (Load more), null once the listing is read to its end. */
  end: PageStart | null;
}

export const emptyListing = <T>(): Listing<T> => ({
  rows: [],
  starts: [],
  end: { cursor: null, after: null },
});

/** The listing with its first unread page made a loaded page's start: `page`, to read and merge. */
export function withNextPage<T>(l: Listing<T>, end: PageStart): { listing: Listing<T>; page: number } {
  return { listing: { ...l, starts: [...l.starts, end] }, page: l.starts.length };
}

/**
 * Puts what page `k` answers now in place of the rows it covers: after its start up to its last
 * row, or to the listing's end when no page follows. Rows outside that range stay; the pages after
 * it start where it now ends.
 */
export function mergePage<T>(
  l: Listing<T>,
  k: number,
  page: { items: T[]; next: string | null },
  by: (row: T) => string,
): Listing<T> {
  const lo = l.starts[k]!.after;
  const last = page.items.at(-1);
  const hi = page.next !== null && last !== undefined ? by(last) : null;
  const covered = (key: string) => (lo === null || key > lo) && (hi === null || key <= hi);
  const rows = [...l.rows.filter((r) => !covered(by(r))), ...page.items].sort((a, b) =>
    by(a) < by(b) ? -1 : by(a) > by(b) ? 1 : 0,
  );
  const before = l.starts.slice(0, k + 1);
  if (hi === null) return { rows, starts: before, end: null };
  const later = l.starts.slice(k + 1).filter((s) => s.after !== null && s.after > hi);
  const next: PageStart = { cursor: page.next, after: hi };
  // Rows past this page were loaded: the page after it starts at its new end.
  const loadedPast = l.end === null || (l.end.after !== null && l.end.after > hi);
  return loadedPast
    ? { rows, starts: [...before, next, ...later], end: l.end }
    : { rows, starts: before, end: next };
}
