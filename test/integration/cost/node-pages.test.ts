/**
 * Issue 16: GET /api/nodes/, GET /workers and GET /api/swarm/nodes return the fleet a page at a
 * time, and a page reads the same at 200 and at 800 nodes (node records loaded straight into the
 * store around registered simulated nodes; the embedded runtime's ports metered). Walking the pages
 * names every node once. Counts, never timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { awsCharged, operationUnits, startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { loadNodeRecords } from '../../../bench/cost/load-nodes.js';
import { operationLabel } from '../../../functions/metering/metered-lambda.js';
import type { MeterEntry } from '../../../functions/metering/meter.js';

const PAGE = 50;
/** Names the loaded nodes page-000120 to page-000129 begin with. */
const SEARCH = 'page-00012';
const LISTINGS = ['/api/nodes/', '/workers', '/api/swarm/nodes'] as const;

interface Named {
  id: string;
  name?: string;
}

/** One page: the names listed and the next cursor (in the body, or the header of an array body). */
async function get(base: string, path: string) {
  const res = await fetch(`${base}${path}`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
  const body = (await res.json()) as any;
  const rows: Named[] = Array.isArray(body) ? body : (body.nodes ?? body.workers ?? []);
  const next: string | null = Array.isArray(body)
    ? res.headers.get('x-next-cursor')
    : (body.next_cursor ?? null);
  // Swarm nodes show hostnames (loaded nodes share their template's): their ids there.
  const names = rows.map((r) => (Array.isArray(body) ? r.id : r.name!));
  return { status: res.status, body, names, next };
}

const at = (path: string, query: string) => `${path}?${query}`;

async function unitsOf(fleet: Fleet, path: string) {
  fleet.meter.reset();
  const res = await get(fleet.rt.url, path);
  expect(res.status).toBe(200);
  const label = operationLabel('GET', path.split('?')[0]!);
  const mine = (e: MeterEntry) => awsCharged(e) && e.label === label;
  return { ...res, units: operationUnits(fleet.meter.total(mine)) };
}

describe('fleet listings a page at a time', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  /** The first two pages metered, every page walked, and the listing without a limit. */
  async function walk(f: Fleet, path: string) {
    const first = await unitsOf(f, at(path, `limit=${PAGE}`));
    const second = await unitsOf(f, at(path, `limit=${PAGE}&cursor=${encodeURIComponent(first.next!)}`));
    const names: string[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await get(f.rt.url, at(path, `limit=${PAGE}${q}`));
      expect(res.status).toBe(200);
      expect(res.names.length).toBeLessThanOrEqual(PAGE);
      names.push(...res.names);
      cursor = res.next;
      pages++;
    } while (cursor !== null);
    const whole = await get(f.rt.url, path);
    // A search by name: a page of the nodes whose name begins with it, paged the same way.
    const search = await unitsOf(f, at(path, `name_prefix=${SEARCH}&limit=4`));
    const found = [...search.names];
    for (let next = search.next; next !== null;) {
      const res = await get(
        f.rt.url,
        at(path, `name_prefix=${SEARCH}&limit=4&cursor=${encodeURIComponent(next)}`),
      );
      expect(res.names.length).toBeLessThanOrEqual(4);
      found.push(...res.names);
      next = res.next;
    }
    const none = await get(f.rt.url, at(path, 'name_prefix=nowhere'));
    return { first, second, names, pages, whole, search, found, none };
  }

  async function listAt(extra: number) {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const f = fleet;
    await loadNodeRecords(f, extra, 'page');
    await f.settle();
    const out = new Map<string, Awaited<ReturnType<typeof walk>>>();
    for (const path of LISTINGS) out.set(path, await walk(f, path));
    return { total: extra + 2, out };
  }

  it('a page reads the same at 200 and at 800 nodes; the pages name every node once', async () => {
    const small = await listAt(198);
    await fleet!.stop();
    fleet = undefined;
    const large = await listAt(798);
    for (const path of LISTINGS) {
      for (const { total, out } of [small, large]) {
        const run = out.get(path)!;
        expect(run.first.names).toHaveLength(PAGE);
        expect(run.second.names).toHaveLength(PAGE);
        expect(run.names).toHaveLength(total);
        expect(new Set(run.names).size).toBe(total);
        // Without a limit, a fleet under 1,000 nodes comes back whole.
        expect(run.whole.names).toHaveLength(total);
        expect(run.whole.next).toBeNull();
      }
      const s = small.out.get(path)!;
      const l = large.out.get(path)!;
      expect(l.first.units.read_units).toBe(s.first.units.read_units);
      expect(l.second.units.read_units).toBe(s.second.units.read_units);
      expect(l.first.units.dynamo_calls).toBe(s.first.units.dynamo_calls);
      // The search finds the same ten nodes at both sizes, for the same read units.
      const ten = Array.from({ length: 10 }, (_, i) => `page-00012${i}`);
      for (const run of [s, l]) {
        expect(run.found).toEqual(ten);
        expect(run.search.names).toHaveLength(4);
        expect(run.none.status).toBe(200);
        expect(run.none.names).toEqual([]);
        expect(run.none.next).toBeNull();
      }
      expect(l.search.units.read_units).toBe(s.search.units.read_units);
      expect(l.search.units.read_units).toBeLessThan(l.first.units.read_units);
    }
    // By name.
    const names = large.out.get('/api/nodes/')!.names;
    expect(names).toEqual([...names].sort());
  });

  it('a bad cursor or limit is a 400 in the documented shape; the last page says so', async () => {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const url = fleet.rt.url;
    for (const path of LISTINGS) {
      for (const cursor of [
        'not-a-cursor!',
        Buffer.from('[1]').toString('base64url'),
        Buffer.from('{"a":""}').toString('base64url'),
      ]) {
        const res = await get(url, at(path, `cursor=${encodeURIComponent(cursor)}`));
        expect(res.status).toBe(400);
        expect(res.body.detail).toEqual([
          expect.objectContaining({ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor' }),
        ]);
      }
      for (const limit of ['0', '1001', 'x']) {
        const res = await get(url, at(path, `limit=${limit}`));
        expect(res.status).toBe(400);
        expect(res.body.detail).toEqual([expect.objectContaining({ loc: ['query', 'limit'] })]);
      }
      for (const prefix of ['', 'x'.repeat(254)]) {
        const res = await get(url, at(path, `name_prefix=${prefix}`));
        expect(res.status).toBe(400);
        expect(res.body.detail).toEqual([expect.objectContaining({ loc: ['query', 'name_prefix'] })]);
      }
      const one = await get(url, at(path, 'limit=1'));
      expect(one.names).toHaveLength(1);
      const rest = await get(url, at(path, `limit=5&cursor=${one.next!}`));
      expect(rest.names).toHaveLength(1);
      expect(rest.next).toBeNull();
    }
  });
});
