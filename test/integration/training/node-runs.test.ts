import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainingEventHandlers } from '../../../functions/training/events.js';
import type { Runtime } from '../../../local/runtime.js';
import { ScriptedAgent } from '../../harness/scripted-agent.js';
import { requireMoto } from '../../harness/services.js';
import {
  call,
  embeddedEnv,
  emulatorEnv,
  eventually,
  jobBody,
  RecordingLauncher,
  startTrainingRuntime,
} from './harness.js';

interface RunRow {
  run_id: string;
  job_id: string;
  status: string;
  node_id: string;
  started_at: string;
  exit_code: number | null;
}

const moto = requireMoto();
const modes = [
  { name: 'embedded', env: embeddedEnv, skip: false },
  {
    name: `emulator (moto DynamoDB)${moto.available ? '' : ` [skipped: ${moto.reason}]`}`,
    env: emulatorEnv(process.env.AWS_ENDPOINT_URL),
    skip: !moto.available,
  },
];

/** GET /api/nodes/{node_id}/runs: one node's runs of any job, paged, through the runtime's HTTP server. */
describe.each(modes)("a node's training runs, $name", (mode) => {
  let rt: Runtime;
  let launcher: RecordingLauncher;
  let a: ScriptedAgent;
  let b: ScriptedAgent;
  /** Run ids by node, in the order their jobs were created. */
  const placed = new Map<string, string[]>();
  beforeAll(async () => {
    if (mode.skip) return;
    rt = await startTrainingRuntime(mode.env);
    launcher = new RecordingLauncher().install(rt);
    a = new ScriptedAgent(rt.url, 'runs-a');
    b = new ScriptedAgent(rt.url, 'runs-b');
    await a.register();
    await b.register();
    // Five jobs run on a, two on b, interleaved.
    for (const node of [a, a, b, a, b, a, a]) {
      launcher.on = node.nodeId;
      const created = await api('POST', '/jobs', jobBody({ schedule: null }));
      expect(created.status).toBe(201);
      const id = created.body.job_id as string;
      const run = await eventually(async () => {
        const runs = (await api('GET', `/jobs/${id}/runs`)).body.runs as RunRow[];
        expect(runs[0]?.status).toBe('running');
        return runs[0]!;
      });
      expect(run.node_id).toBe(node.nodeId);
      placed.set(node.nodeId, [...(placed.get(node.nodeId) ?? []), run.run_id]);
    }
  });
  afterAll(async () => rt?.stop());
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  /** Every run of a node, page after page of `limit`, and how many pages that took. */
  async function allPages(node: string, limit: number) {
    const runs: RunRow[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await api(
        'GET',
        `/api/nodes/${node}/runs?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      expect((res.body.runs as RunRow[]).length).toBeLessThanOrEqual(limit);
      runs.push(...(res.body.runs as RunRow[]));
      cursor = res.body.next_cursor as string | null;
      pages++;
    } while (cursor);
    return { runs, pages };
  }

  it.skipIf(mode.skip)('lists the runs of one node only, latest start first, page by page', async () => {
    const { runs, pages } = await allPages(a.nodeId, 2);
    expect(pages).toBe(3);
    expect(runs.map((r) => r.run_id)).toEqual([...placed.get(a.nodeId)!].reverse());
    expect(runs.every((r) => r.node_id === a.nodeId && r.status === 'running')).toBe(true);
    const whole = await api('GET', `/api/nodes/${a.nodeId}/runs`);
    expect(whole.body).toEqual({ node_id: a.nodeId, runs, next_cursor: null });
    expect((await allPages(b.nodeId, 20)).runs.map((r) => r.run_id)).toEqual(
      [...placed.get(b.nodeId)!].reverse(),
    );
  });

  it.skipIf(mode.skip)('answers by name the same runs', async () => {
    const byName = await api('GET', '/api/nodes/runs-b/runs');
    expect(byName.status).toBe(200);
    expect(byName.body.node_id).toBe(b.nodeId);
    expect((byName.body.runs as RunRow[]).map((r) => r.run_id)).toEqual([...placed.get(b.nodeId)!].reverse());
  });

  it.skipIf(mode.skip)("shows a run's end: its status and exit code", async () => {
    const runId = placed.get(b.nodeId)![0]!;
    await trainingEventHandlers['agent.container.exited']!(
      {
        type: 'agent.container.exited',
        nodeId: b.nodeId,
        instanceId: runId,
        kind: 'run',
        exitCode: 0,
        logTail: 'done\n',
        at: new Date().toISOString(),
      },
      rt.ctx,
    );
    const runs = (await api('GET', `/api/nodes/${b.nodeId}/runs`)).body.runs as RunRow[];
    expect(runs.find((r) => r.run_id === runId)).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(runs.map((r) => r.run_id)).toEqual([...placed.get(b.nodeId)!].reverse());
  });

  it.skipIf(mode.skip)('answers an unknown node with 404 in the FastAPI error shape', async () => {
    const res = await api('GET', '/api/nodes/no-such-node/runs');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: 'Node no-such-node not found' });
  });

  it.skipIf(mode.skip)('answers a bad limit or cursor with 400 saying which', async () => {
    for (const limit of ['0', '101', 'x']) {
      const res = await api('GET', `/api/nodes/${a.nodeId}/runs?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(res.body.detail).toEqual([expect.objectContaining({ loc: ['query', 'limit'] })]);
    }
    for (const cursor of [
      'not-a-cursor!',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('{"a":""}').toString('base64url'),
      Buffer.from('{"a":"JOB#x"}').toString('base64url'),
    ]) {
      const res = await api('GET', `/api/nodes/${a.nodeId}/runs?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.detail).toEqual([
        expect.objectContaining({ loc: ['query', 'cursor'], msg: 'Invalid pagination cursor' }),
      ]);
    }
  });
});
