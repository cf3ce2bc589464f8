/**
 * The read-unit suites' (test/integration/cost/*-reads.test.ts) one way to measure: a metered fleet,
 * the read units and read calls of one request or one run from a reset meter, the check that two
 * sizes read the same, and a listing read page after page.
 */
import { expect } from 'vitest';
import {
  awsCharged,
  operationUnits,
  startFleet,
  type CostOptions,
  type Fleet,
} from '../../bench/cost/fleet.js';
import { operationLabel } from '../../functions/metering/metered-lambda.js';
import type { Meter, MeterEntry } from '../../functions/metering/meter.js';
import { call } from './scripted-agent.js';

/** `nodes` idle nodes of one GPU each: two registered simulated nodes, the rest loaded as records. */
export function loadedFleet(nodes: number, more: Partial<CostOptions> = {}): CostOptions {
  return { nodes, live: 2, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 }, ...more };
}

/** Starts a metered fleet, hands it to `use`, and stops it whatever `use` does. */
export async function withFleet<T>(options: CostOptions, use: (f: Fleet) => Promise<T>): Promise<T> {
  const f = await startFleet(options);
  try {
    return await use(f);
  } finally {
    await f.stop();
  }
}

export interface Reads {
  read: number;
  /** Gets and queries: a request may also write (counters flushed on a timer). */
  calls: number;
}

export interface Measured extends Reads {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
  body: Record<string, any>;
}

/** Read units and read calls of the meter entries `mine` picks. */
function readsOf(meter: Meter, mine: (e: MeterEntry) => boolean): Reads {
  return {
    read: operationUnits(meter.total(mine)).read_units,
    calls: meter
      .list()
      .filter((e) => mine(e) && /^dynamo\.(get|query)/.test(e.kind))
      .reduce((n, e) => n + e.calls, 0),
  };
}

/** The entries AWS charges to one API request's invocation (its label is the route's). */
export function chargedTo(method: string, route: string): (e: MeterEntry) => boolean {
  const label = operationLabel(method, route);
  return (e) => awsCharged(e) && e.label === label;
}

/** One request from a reset meter (its route: the path without its query). */
export async function measureRequest(
  meter: Meter,
  url: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Measured> {
  meter.reset();
  const res = await call(url, method, path, body);
  return {
    status: res.status,
    body: res.body as Measured['body'],
    ...readsOf(meter, chargedTo(method, path.split('?')[0]!)),
  };
}

/** A GET of each of `paths` (`fill` makes the path sent), each answered 200, by path. */
export async function measureGets(
  f: Fleet,
  paths: readonly string[],
  fill: (path: string) => string = (path) => path,
): Promise<Map<string, Measured>> {
  const out = new Map<string, Measured>();
  for (const path of paths) {
    const m = await measureRequest(f.meter, f.rt.url, 'GET', fill(path));
    expect(m.status).toBe(200);
    out.set(path, m);
  }
  return out;
}

/** One in-process run from a reset meter, under its own label. */
export async function measureRun<T>(
  meter: Meter,
  label: string,
  run: () => Promise<T>,
): Promise<Reads & { out: T }> {
  meter.reset();
  const out = await meter.within(label, run);
  return { out, ...readsOf(meter, (e) => e.label === label) };
}

/** The ids a listing's `field` holds, page after page from `path` (its query set), each page answered 200. */
export async function pagedIds(url: string, path: string, field: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await call(url, 'GET', `${path}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(res.status).toBe(200);
    ids.push(...(res.body[field] as { id: string }[]).map((c) => c.id));
    cursor = res.body.next_cursor as string | null;
  } while (cursor);
  return ids;
}

/** The same request at two sizes: answered, read something, and read the same. */
export function expectSameReads(small: Measured, large: Measured): void {
  expect(small.status).toBe(200);
  expect(large.status).toBe(200);
  expect(small.calls).toBeGreaterThan(0);
  expect(large.read).toBe(small.read);
  expect(large.calls).toBe(small.calls);
}
