/**
 * Issue 16: what a task listing, the vision queue and a queue count read does not grow with the
 * queue. Task records are loaded straight into the store (as submitTask and a finish leave them,
 * counted by the real counters), the embedded runtime's ports are metered; counts, never timings.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../../../bench/cost/fleet.js';
import { call, type HttpAnswer } from '../../harness/scripted-agent.js';
import { measureGets, withFleet, type Measured } from '../../harness/read-units.js';
import { keys } from '../../../functions/core/keys.js';
import { countTransition } from '../../../functions/cluster/task-counts.js';
import { closeQueued, queueOrder, type TaskItem, type TaskStatus } from '../../../functions/cluster/tasks.js';

/** A response object or a listed item, as JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
type Row = Record<string, any>;

const PRIORITIES = [-1, 0, 1, 2, 0, 0, 1];
const MINUTE = 60_000;
/** Both past a page of 50 in every priority level and status, so each size reads whole pages. */
const SMALL = 300;
const LARGE = 1500;

/** `n` tasks created over the last 90 minutes (aging crosses levels), a share of them finished. */
async function loadTasks(fleet: Fleet, n: number, finishedShare: number): Promise<TaskItem[]> {
  const ctx = fleet.rt.ctx;
  const now = ctx.now();
  const items: TaskItem[] = Array.from({ length: n }, (_, i) => {
    const taskId = randomUUID();
    const createdAtMs = now - 90 * MINUTE + Math.floor((i * 90 * MINUTE) / n);
    const createdAt = new Date(createdAtMs).toISOString();
    const priority = PRIORITIES[i % PRIORITIES.length]!;
    const finished = i % 10 < finishedShare * 10;
    const status: TaskStatus = finished ? 'completed' : 'queued';
    return {
      ...keys.task(taskId),
      ...keys.taskIndexes(taskId, createdAt),
      ...(finished ? {} : keys.queuedIndex(priority, createdAt, taskId)),
      taskId,
      source: i % 2 ? 'cluster' : 'vision',
      taskType: i % 2 ? 'text_generation' : 'image_generation',
      model: i % 3 ? 'SDXL_4GB_FP8.safetensors' : 'llama-3-8b',
      parameters: { prompt: `task ${i}` },
      priority,
      priorityInput: priority,
      status,
      createdAt,
      createdAtMs,
      runTimeoutSeconds: 600,
      attempts: 0,
      progress: finished ? 100 : 0,
      counted: true,
      ...(finished ? { completedAt: new Date(now).toISOString(), completedAtMs: now } : {}),
    };
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < items.length) {
        const t = items[next++]!;
        await ctx.store.put(t);
        await countTransition(ctx, t, undefined, 'queued');
        if (t.status !== 'queued') await countTransition(ctx, t, 'queued', t.status);
      }
    }),
  );
  return items;
}

const READS = [
  '/tasks',
  '/tasks?status=queued',
  '/tasks?status=completed',
  '/api/vision/queue',
  '/api/vision/jobs',
  '/api/vision/status',
  '/cluster/status',
  '/metrics',
] as const;

describe('task listings and queue counts read the same whatever the queue holds', () => {
  const measured = new Map<number, Map<string, Measured>>();

  async function measureAt(n: number) {
    await withFleet({ nodes: 1, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } }, async (fleet) => {
      await loadTasks(fleet, n, 0.3);
      measured.set(n, await measureGets(fleet, READS));
    });
  }

  beforeAll(async () => {
    await measureAt(SMALL);
    await measureAt(LARGE);
  }, 240_000);

  it.each(READS)('%s reads no more with 1,500 tasks than with 300', (path) => {
    const small = measured.get(SMALL)!.get(path)!;
    const large = measured.get(LARGE)!.get(path)!;
    // A page of 50 is read either way; the counts are a few records of 8 shards.
    expect(large.read).toBe(small.read);
    expect(large.calls).toBe(small.calls);
  });

  it('counts the queue and the tasks from the counters', () => {
    const large = measured.get(LARGE)!;
    // 1,500 tasks, 3 in 10 completed: 1,050 queued; half of them image jobs.
    expect(large.get('/tasks')!.body.total).toBe(1500);
    expect(large.get('/tasks?status=queued')!.body.total).toBe(1050);
    expect(large.get('/tasks?status=completed')!.body.total).toBe(450);
    expect(large.get('/api/vision/queue')!.body.length).toBe(1050);
    expect(large.get('/api/vision/queue')!.body.queue).toHaveLength(50);
    expect(large.get('/api/vision/jobs')!.body.total).toBe(750);
    expect(large.get('/api/vision/status')!.body.queue_length).toBe(1050);
    expect(large.get('/cluster/status')!.body.queued_tasks).toBe(1050);
    const metrics = String(large.get('/metrics')!.body);
    const depth = [...metrics.matchAll(/^fleet_task_queue_depth\{[^}]*\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(depth).toBe(1050);
  });
});

describe('paging with a cursor', () => {
  let fleet: Fleet;
  let tasks: TaskItem[];
  beforeAll(async () => {
    fleet = await startFleet({ nodes: 0, profile: 'idle', hardware: { kind: 'gpu', gpus: 1 } });
    tasks = await loadTasks(fleet, 400, 0.3);
  }, 120_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  /** Every page of a listing; the items of each and the responses. */
  async function pages(path: string, field: string) {
    const seen: Row[] = [];
    const bodies: Row[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const res: HttpAnswer<Row> = await call<Row>(
        fleet.rt.url,
        'GET',
        `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      bodies.push(res.body);
      seen.push(...(res.body[field] as Row[]));
      cursor = res.body.cursor as string | null;
      expect(bodies.length).toBeLessThan(100);
    } while (cursor);
    return { seen, bodies };
  }

  it('GET /tasks returns every task exactly once, newest first', async () => {
    const { seen, bodies } = await pages('/tasks?limit=37', 'tasks');
    const ids = seen.map((t) => t.task_id);
    expect(new Set(ids).size).toBe(ids.length);
    const newest = [...tasks].sort((a, b) => b.createdAtMs - a.createdAtMs).map((t) => t.taskId);
    expect(ids).toEqual(newest);
    expect(bodies.every((b) => b.total === 400 && b.limit === 37)).toBe(true);
    expect(bodies.map((b) => b.offset)).toEqual(bodies.map((_, i) => i * 37));
  });

  it('GET /tasks?status=queued pages the queue index, newest first', async () => {
    const { seen } = await pages('/tasks?status=queued&limit=25', 'tasks');
    const queued = tasks.filter((t) => t.status === 'queued');
    expect(seen.map((t) => t.task_id)).toEqual(
      [...queued].sort((a, b) => b.createdAtMs - a.createdAtMs).map((t) => t.taskId),
    );
    expect(seen.every((t) => t.status === 'queued')).toBe(true);
  });

  it('GET /tasks?status=completed filters what it reads and still returns each once', async () => {
    const { seen } = await pages('/tasks?status=completed&limit=20', 'tasks');
    const done = tasks.filter((t) => t.status === 'completed').map((t) => t.taskId);
    expect(new Set(seen.map((t) => t.task_id))).toEqual(new Set(done));
    expect(seen).toHaveLength(done.length);
  });

  it("GET /api/vision/queue pages the queue in the scheduler's order, positions running on", async () => {
    const { seen, bodies } = await pages('/api/vision/queue?limit=30', 'queue');
    const order = queueOrder(
      tasks.filter((t) => t.status === 'queued'),
      fleet.rt.ctx.now(),
    ).map((t) => t.taskId);
    expect(seen.map((q) => q.job_id)).toEqual(order);
    expect(seen.map((q) => q.position)).toEqual(order.map((_, i) => i + 1));
    expect(bodies.every((b) => b.length === order.length && b.limit === 30)).toBe(true);
  });

  it('GET /api/vision/jobs pages image jobs, each once', async () => {
    const { seen } = await pages('/api/vision/jobs?limit=40', 'jobs');
    const images = tasks.filter((t) => t.taskType === 'image_generation');
    expect(seen.map((j) => j.job_id)).toEqual(
      [...images].sort((a, b) => b.createdAtMs - a.createdAtMs).map((t) => t.taskId),
    );
    // A listing counts no queue position (GET /api/vision/jobs/{id} does).
    expect(seen.filter((j) => j.status === 'queued').every((j) => j.queue_position === null)).toBe(true);
  });

  it('keeps offset paging: the page after `offset` tasks', async () => {
    const res = await call(fleet.rt.url, 'GET', '/tasks?limit=10&offset=95');
    expect(res.status).toBe(200);
    const newest = [...tasks].sort((a, b) => b.createdAtMs - a.createdAtMs).map((t) => t.taskId);
    expect(res.body.tasks.map((t: Row) => t.task_id)).toEqual(newest.slice(95, 105));
    expect(res.body.offset).toBe(95);
  });

  it.each([
    ['/tasks', 'not-a-cursor!'],
    ['/tasks', Buffer.from('{"k":"x","n":0}').toString('base64url')],
    ['/tasks?status=queued', Buffer.from('{"k":"2026-01-01T00:00:00.000Z#a","n":0}').toString('base64url')],
    ['/api/vision/queue', Buffer.from('[1,2]').toString('base64url')],
    ['/api/vision/queue', Buffer.from('{"o":"schedule","l":{"7":"x"},"n":0}').toString('base64url')],
    ['/api/vision/jobs', Buffer.from('{"k":"2026-01-01T00:00:00.000Z#a","n":-1}').toString('base64url')],
  ])('%s answers 400 for the cursor %s', async (path, cursor) => {
    const sep = path.includes('?') ? '&' : '?';
    const res = await call(fleet.rt.url, 'GET', `${path}${sep}cursor=${encodeURIComponent(cursor)}`);
    expect(res.status).toBe(400);
    expect(res.body.detail).toEqual([
      expect.objectContaining({ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor' }),
    ]);
  });

  it('a task stored before the counters moves none of them (they would be off for good)', async () => {
    const ctx = fleet.rt.ctx;
    const before = (await call(fleet.rt.url, 'GET', '/api/vision/queue?limit=1')).body.length as number;
    const { counted: _counted, ...old } = tasks.find((t) => t.status === 'queued')!;
    const taskId = randomUUID();
    const createdAt = new Date(ctx.now()).toISOString();
    await ctx.store.put({
      ...old,
      ...keys.task(taskId),
      ...keys.taskIndexes(taskId, createdAt),
      ...keys.queuedIndex(old.priority, createdAt, taskId),
      taskId,
      createdAt,
      createdAtMs: ctx.now(),
    });
    const listed = await call(fleet.rt.url, 'GET', '/tasks?status=queued&limit=1');
    expect(listed.body.tasks[0].task_id).toBe(taskId);
    expect(await closeQueued(ctx, taskId, 'cancelled')).toMatchObject({ status: 'cancelled' });
    expect((await call(fleet.rt.url, 'GET', '/api/vision/queue?limit=1')).body.length).toBe(before);
  });

  it('a cursor of one listing is refused by another', async () => {
    const first = await call(fleet.rt.url, 'GET', '/api/vision/queue?limit=5');
    const res = await call(
      fleet.rt.url,
      'GET',
      `/tasks?cursor=${encodeURIComponent(String(first.body.cursor))}`,
    );
    expect(res.status).toBe(400);
  });
});
