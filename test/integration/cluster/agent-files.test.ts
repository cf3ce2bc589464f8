import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { PNG_1x1, ScriptedAgent, call, eventually, GPU_WORKER } from '../../harness/scripted-agent.js';

/**
 * What a node sends about a task only lands where that task's outputs go: task ids are checked,
 * storage keys never come from the node's file names, another node's task gets nothing stored,
 * and outputs are served with a content type from the allowlist, never the node's.
 * Embedded runtime (the artifacts store is a folder, where `../` once resolved).
 */
describe('task files from agents (embedded runtime)', () => {
  let rt: Runtime;
  const agents: ScriptedAgent[] = [];
  let taskId = '';
  let owner: ScriptedAgent;
  let other: ScriptedAgent;
  const at = new Date().toISOString();
  // Past the 200 KiB inline limit: the agent routes park such files in blobs first.
  const big = Buffer.concat([PNG_1x1, Buffer.alloc(250 * 1024, 0x41)]).toString('base64');
  const html = Buffer.from('<script>alert(document.cookie)</script>').toString('base64');

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: { ...process.env, AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT' },
    });
    for (const name of ['files-a', 'files-b']) {
      const a = new ScriptedAgent(rt.url, name, { ...GPU_WORKER, heartbeatMs: 200 });
      await a.register();
      await a.heartbeat();
      a.start();
      agents.push(a);
    }
    const job = await call(rt.url, 'POST', '/api/vision/generate', { prompt: 'a lighthouse', steps: 10 });
    expect(job.status).toBe(200);
    taskId = job.body.job_id;
    owner = await eventually(() => {
      const a = agents.find((x) => x.running.has(taskId));
      if (!a) throw new Error('not placed yet');
      return a;
    });
    other = agents.find((a) => a !== owner)!;
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await rt?.stop();
  });

  const allKeys = async () => (await rt.ctx.blobs.list('')).map((b) => b.key);
  const events = (a: ScriptedAgent, list: unknown[]) =>
    call(rt.url, 'POST', '/agent/events', { events: list }, a.auth);

  it('refuses task ids with path separators or ".." (422) and stores nothing', async () => {
    const before = await allKeys();
    for (const bad of ['../../outputs', 'a/b', '..', `${taskId}/../x`]) {
      const res = await events(owner, [
        {
          type: 'task.finished',
          taskId: bad,
          status: 'completed',
          files: [{ name: 'evil.html', contentType: 'text/html', base64: big }],
          at,
        },
      ]);
      expect(res.status).toBe(422);
      expect(res.body.detail[0].loc).toEqual(['body', 'events', 0, 'taskId']);
    }
    expect(await allKeys()).toEqual(before);
    expect((await call(rt.url, 'GET', '/api/vision/outputs')).body.total).toBe(0);
  });

  it("another node's report on the task stores nothing and changes nothing", async () => {
    const res = await events(other, [
      {
        type: 'task.finished',
        taskId,
        status: 'completed',
        files: [{ name: 'image_0.png', contentType: 'image/png', base64: big }],
        at,
      },
    ]);
    expect(res.status).toBe(200);
    expect(
      (await allKeys()).filter((k) => k.startsWith('agent-events/') || k.startsWith('outputs/')),
    ).toEqual([]);
    const task = await call(rt.url, 'GET', `/tasks/${taskId}`);
    expect(['assigned', 'running']).toContain(task.body.status);
  });

  it("the owner's files land under outputs/ with safe names and are served by extension, never by the node's type", async () => {
    const res = await events(owner, [
      {
        type: 'task.finished',
        taskId,
        status: 'completed',
        files: [
          // The node claims HTML for a PNG, and names a file to climb out of its folder.
          { name: 'image_0.png', contentType: 'text/html', base64: big },
          { name: '../../../outputs/evil.html', contentType: 'text/html', base64: html },
        ],
        at,
      },
    ]);
    expect(res.status).toBe(200);
    const task = await eventually(async () => {
      const t = await call(rt.url, 'GET', `/tasks/${taskId}`);
      if (t.body.status !== 'completed') throw new Error(t.body.status);
      return t;
    });
    expect(task.body.status).toBe('completed');

    const keys = await allKeys();
    expect(keys.filter((k) => k.startsWith('agent-events/'))).toEqual([]);
    expect(keys.filter((k) => k.startsWith('outputs/')).sort()).toEqual(
      [`outputs/${taskId}_evil.html`, `outputs/${taskId}_image_0.png`].sort(),
    );

    const png = await fetch(`${rt.url}/api/vision/outputs/${taskId}_image_0.png`);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(png.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await png.arrayBuffer()).toString('base64')).toBe(big);

    const page = await fetch(`${rt.url}/api/vision/outputs/${taskId}_evil.html`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('application/octet-stream');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('content-security-policy')).toContain('sandbox');
  });
});
