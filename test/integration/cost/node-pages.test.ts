/**
 * Issue 16: GET /api/nodes/ and GET /workers return the fleet a page at a time, and a page reads
 * the same at 200 and at 800 nodes (node records loaded straight into the store around registered simulated
 * nodes; the embedded runtime's ports metered). Walking the pages names every node once. Counts,
 * never timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { awsCharged, operationUnits, startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { loadNodeRecords } from '../../../bench/cost/load-nodes.js';
import { call } from '../../harness/scripted-agent.js';
import { operationLabel } from '../../../functions/metering/metered-lambda.js';
import type { MeterEntry } from '../../../functions/metering/meter.js';

interface Listing {
  nodes?: { name: string }[];
  workers?: { name: string }[];
  next_cursor: string | null;
}

const PAGE = 50;
const LISTINGS = ['/api/nodes/', '/workers'] as const;
const namesOf = (body: Listing) => (body.nodes ?? body.workers ?? []).map((n) => n.name);

async function unitsOf(fleet: Fleet, path: string) {
  fleet.meter.reset();
  const res = await call<Listing>(fleet.rt.url, 'GET', path);
  expect(res.status).toBe(200);
  const label = operationLabel('GET', path.split('?')[0]!);
  const mine = (e: MeterEntry) => awsCharged(e) && e.label === label;
  return { body: res.body, units: operationUnits(fleet.meter.total(mine)) };
}

describe('GET /api/nodes/ and GET /workers a page at a time', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
  });

  /** The first two pages metered, every page walked, and the listing without a limit. */
  async function walk(f: Fleet, path: string) {
    const first = await unitsOf(f, `${path}?limit=${PAGE}`);
    const second = await unitsOf(
      f,
      `${path}?limit=${PAGE}&cursor=${encodeURIComponent(first.body.next_cursor!)}`,
    );
    const names: string[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await call<Listing>(f.rt.url, 'GET', `${path}?limit=${PAGE}${q}`);
      expect(res.status).toBe(200);
      expect(namesOf(res.body).length).toBeLessThanOrEqual(PAGE);
      names.push(...namesOf(res.body));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null);
    const whole = (await call<Listing>(f.rt.url, 'GET', path)).body;
    return { first, second, names, pages, whole };
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
        expect(namesOf(run.first.body)).toHaveLength(PAGE);
        expect(namesOf(run.second.body)).toHaveLength(PAGE);
        expect(run.names).toHaveLength(total);
        expect(new Set(run.names).size).toBe(total);
        expect(run.names).toEqual([...run.names].sort());
        expect(run.pages).toBe(Math.ceil(total / PAGE));
        // Without a limit, a fleet under 1,000 nodes comes back whole.
        expect(namesOf(run.whole)).toHaveLength(total);
        expect(run.whole.next_cursor).toBeNull();
      }
      const s = small.out.get(path)!;
      const l = large.out.get(path)!;
      expect(l.first.units.read_units).toBe(s.first.units.read_units);
      expect(l.second.units.read_units).toBe(s.second.units.read_units);
      expect(l.first.units.dynamo_calls).toBe(s.first.units.dynamo_calls);
    }
  });

  it('a bad cursor is a 400 and a limit out of range are 400s, in the documented shape', async () => {
    fleet = await startFleet({ nodes: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    const url = fleet.rt.url;
    for (const cursor of [
      'not-a-cursor!',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('{"a":""}').toString('base64url'),
    ]) {
      const res = await call(url, 'GET', `/api/nodes/?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status).toBe(400);
      expect(res.body.detail).toEqual([
        expect.objectContaining({ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor' }),
      ]);
    }
    for (const limit of ['0', '1001', 'x']) {
      const res = await call(url, 'GET', `/api/nodes/?limit=${limit}`);
      expect(res.status).toBe(400);
      expect(res.body.detail).toEqual([expect.objectContaining({ loc: ['query', 'limit'] })]);
    }
    // The last page says so; a page of one names the first node by name.
    for (const path of LISTINGS) {
      const one = await call<Listing>(url, 'GET', `${path}?limit=1`);
      expect(namesOf(one.body)).toHaveLength(1);
      const rest = await call<Listing>(url, 'GET', `${path}?limit=5&cursor=${one.body.next_cursor!}`);
      expect(namesOf(rest.body)).toHaveLength(1);
      expect(rest.body.next_cursor).toBeNull();
    }
    const bad = await call(url, 'GET', '/workers?cursor=x.y');
    expect(bad.status).toBe(400);
  });
});
