/**
 * Issue 16: the console node page's training runs. Before, it read the 10 latest jobs and each
 * one's runs (11 requests, growing with the jobs' runs, blind to older jobs); now it reads
 * GET /api/nodes/{node_id}/runs, one request whose read units are the same at 200 nodes and 12
 * jobs as at 800 nodes and 48 jobs. Two registered simulated nodes, the rest loaded as records;
 * runs placed by a recording launcher (six on the first node, the oldest job's among them); every
 * port is metered; counts, never timings.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadedFleet, measureRequest, withFleet, type Measured } from '../../harness/read-units.js';
import { call, eventually, jobBody, RecordingLauncher } from '../training/harness.js';

const SIZES = [
  { nodes: 200, jobs: 12 },
  { nodes: 800, jobs: 48 },
] as const;
/** Runs on the measured node at each size; the page shows one fewer, so a next page follows. */
const ON_NODE = 6;
const PAGE = ON_NODE - 1;

interface Size {
  after: Measured;
  /** The page after the first: the rest of the node's runs. */
  rest: Measured;
  /** The old read: GET /jobs?page_size=10, then each listed job's runs. */
  before: { requests: number; read: number; calls: number; found: string[] };
  placed: string[];
}

describe("a node's training runs read the same at 200 nodes and 12 jobs as at 800 nodes and 48", () => {
  const measured = new Map<number, Size>();

  beforeAll(async () => {
    for (const size of SIZES) {
      await withFleet(loadedFleet(size.nodes), async (f) => {
        await f.settle();
        const launcher = new RecordingLauncher().install(f.rt);
        const [node, other] = [f.nodes[0]!.nodeId, f.nodes[1]!.nodeId];
        const every = size.jobs / ON_NODE;
        const placed: string[] = [];
        for (let i = 0; i < size.jobs; i++) {
          launcher.on = i % every === 0 ? node : other;
          const created = await call(f.rt.url, 'POST', '/jobs', jobBody({ schedule: null }));
          expect(created.status).toBe(201);
          const id = created.body.job_id as string;
          const run = await eventually(async () => {
            const runs = (await call(f.rt.url, 'GET', `/jobs/${id}/runs`)).body.runs as {
              run_id: string;
              status: string;
            }[];
            expect(runs[0]?.status).toBe('running');
            return runs[0]!;
          });
          if (launcher.on === node) placed.push(run.run_id);
        }
        await f.settle();
        const path = `/api/nodes/${node}/runs?limit=${PAGE}`;
        const after = await measureRequest(f.meter, f.rt.url, 'GET', path);
        const rest = await measureRequest(
          f.meter,
          f.rt.url,
          'GET',
          `${path}&cursor=${encodeURIComponent(after.body.next_cursor as string)}`,
        );
        const jobs = await measureRequest(f.meter, f.rt.url, 'GET', '/jobs?page_size=10');
        const before = { requests: 1, read: jobs.read, calls: jobs.calls, found: [] as string[] };
        for (const job of jobs.body.jobs as { job_id: string }[]) {
          const runs = await measureRequest(f.meter, f.rt.url, 'GET', `/jobs/${job.job_id}/runs`);
          before.requests++;
          before.read += runs.read;
          before.calls += runs.calls;
          for (const r of runs.body.runs as { run_id: string; node_id: string }[])
            if (r.node_id === node) before.found.push(r.run_id);
        }
        measured.set(size.jobs, { after, rest, before, placed });
      });
    }
  }, 600_000);

  it('one request lists every run of the node, the oldest job’s too, latest first', () => {
    for (const { after, rest, placed } of measured.values()) {
      expect(after.status).toBe(200);
      expect(rest.status).toBe(200);
      expect(rest.body.next_cursor).toBeNull();
      const listed = [...after.body.runs, ...rest.body.runs].map((r: { run_id: string }) => r.run_id);
      expect(listed).toEqual([...placed].reverse());
    }
  });

  it('reads the same units at both sizes', () => {
    const [small, large] = SIZES.map((s) => measured.get(s.jobs)!);
    for (const m of [small!.after, large!.after]) expect(m.calls).toBeGreaterThan(0);
    expect(large!.after.read).toBe(small!.after.read);
    expect(large!.after.calls).toBe(small!.after.calls);
    expect(large!.rest.read).toBe(small!.rest.read);
  });

  it('the old read took 11 requests, grew with the jobs, and missed the runs of older jobs', () => {
    const [small, large] = SIZES.map((s) => measured.get(s.jobs)!);
    for (const m of [small!, large!]) {
      expect(m.before.requests).toBe(11);
      expect(m.before.found.length).toBeLessThan(ON_NODE);
    }
    expect(large!.before.read).toBeGreaterThan(small!.before.read);
    console.info(
      JSON.stringify(
        SIZES.map((s) => {
          const m = measured.get(s.jobs)!;
          return {
            ...s,
            before: {
              requests: m.before.requests,
              read_units: m.before.read,
              calls: m.before.calls,
              found: m.before.found.length,
            },
            after: {
              requests: 1,
              read_units: m.after.read,
              calls: m.after.calls,
              found: m.after.body.runs.length,
            },
          };
        }),
      ),
    );
  });
});
