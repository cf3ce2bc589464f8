import { describe, expect, it } from 'vitest';
import {
  emptyListing,
  mergePage,
  withNextPage,
  type Listing,
} from '../../../web/src/listing.js';

/** A listing by name, `size` a page, its cursor the last name of the page (as GET /api/nodes/ pages). */
class Server {
  reads = 0;
  constructor(
    public names: string[],
    readonly size: number,
  ) {
    this.names.sort();
  }
  page(cursor: string | null) {
    this.reads++;
    const from = cursor === null ? 0 : this.names.findIndex((n) => n > cursor);
    const items = from < 0 ? [] : this.names.slice(from, from + this.size).map((name) => ({ name }));
    const more = from >= 0 && from + this.size < this.names.length;
    return { items, next: more ? items.at(-1)!.name : null };
  }
  add(name: string) {
    this.names = [...this.names, name].sort();
  }
  remove(name: string) {
    this.names = this.names.filter((n) => n !== name);
  }
}

type Row = { name: string };
const by = (r: Row) => r.name;
const names = (l: Listing<Row>) => l.rows.map(by);
const read = (s: Server, l: Listing<Row>, k: number) => mergePage(l, k, s.page(l.starts[k]!.cursor), by);
const more = (s: Server, l: Listing<Row>) => {
  const { listing, page } = withNextPage(l, l.end!);
  return read(s, listing, page);
};

describe('a paged listing refreshed a page at a time', () => {
  it('loads page by page to the end', () => {
    const s = new Server(['a', 'b', 'c', 'd', 'e'], 2);
    let l = more(s, emptyListing());
    expect(names(l)).toEqual(['a', 'b']);
    l = more(s, more(s, l));
    expect(names(l)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(l.end).toBeNull();
    expect(l.starts).toHaveLength(3);
    expect(s.reads).toBe(3);
  });

  it('a node added in the first page shows after its refresh; the rows after it stay, once', () => {
    const s = new Server(['a', 'c', 'e', 'g', 'i'], 2);
    let l = more(s, more(s, more(s, emptyListing())));
    s.add('b');
    l = read(s, l, 0);
    expect(names(l)).toEqual(['a', 'b', 'c', 'e', 'g', 'i']);
    // 'c' left the first page: the page after it now starts there.
    expect(l.starts.map((p) => p.after)).toEqual([null, 'b', 'c', 'g']);
    for (let k = 1; k < l.starts.length; k++) l = read(s, l, k);
    expect(names(l)).toEqual(s.names);
  });

  it('a node removed from a later page goes when that page is read again', () => {
    const s = new Server(['a', 'b', 'c', 'd', 'e'], 2);
    let l = more(s, more(s, emptyListing()));
    s.remove('c');
    l = read(s, l, 0);
    expect(names(l)).toEqual(['a', 'b', 'c', 'd']);
    // 'e' moved into the second page: read with it, now the listing's end.
    l = read(s, l, 1);
    expect(names(l)).toEqual(['a', 'b', 'd', 'e']);
    expect(l.end).toBeNull();
  });

  it('random changes between reads: rows stay sorted and unique, none that still exists is lost', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let run = 0; run < 50; run++) {
      const s = new Server(
        Array.from({ length: 20 }, (_, i) => `n${String(i * 10).padStart(3, '0')}`),
        3,
      );
      let l = more(s, emptyListing<Row>());
      for (let step = 0; step < 40; step++) {
        const change = rand(3);
        if (change === 0) s.add(`n${String(rand(200)).padStart(3, '0')}x${step}`);
        else if (change === 1 && s.names.length) s.remove(s.names[rand(s.names.length)]!);
        const before = new Set(names(l));
        l = l.end && rand(3) === 0 ? more(s, l) : read(s, l, rand(l.starts.length));
        const now = names(l);
        expect(now).toEqual([...new Set(now)].sort());
        for (const n of before) if (s.names.includes(n)) expect(now).toContain(n);
      }
      // Every loaded page read again with nothing changed: exactly the server's rows up to the loaded end.
      for (let k = 0; k < l.starts.length; k++) l = read(s, l, k);
      const end = l.end?.after;
      expect(names(l)).toEqual(s.names.filter((n) => end === undefined || end === null || n <= end));
    }
  });
});
