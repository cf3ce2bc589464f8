import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LABELS, type AgentEvent } from '../../../protocol/messages.js';
import { CommandJournal } from '../../../agent/journal.js';
import { silentLogger } from '../../../agent/log.js';
import { splitModelResponse, TaskRunner, type TaskRunCommand } from '../../../agent/tasks.js';
import { FakeEngine } from './fake-engine.js';

let dir: string;
let server: Server;
let port: number;
let handler: (req: IncomingMessage, body: string, res: ServerResponse) => void;
const seen: Array<{ method: string; url: string; body: string }> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-tasks-'));
  seen.length = 0;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      if (req.method === 'GET') {
        res.writeHead(404).end();
        return;
      }
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
/** Runners and journals of the current test: wound down, their writes on disk, before the folder goes. */
const runners: TaskRunner[] = [];
const journals: CommandJournal[] = [];

afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.shutdown(2_000)));
  await Promise.allSettled(journals.splice(0).map((j) => j.flush()));
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const command = (overrides: Partial<TaskRunCommand> = {}): TaskRunCommand => ({
  type: 'task.run',
  taskId: 'task-1',
  model: 'sdxl',
  server: {
    instanceId: 'model-1',
    imageId: 'localhost/model-server:1',
    name: 'model-1',
    kind: 'model',
    env: {},
    ports: [{ containerPort: 8000, hostPort: port, protocol: 'tcp' }],
    volumes: [],
    labels: {},
    restart: 'no',
  },
  request: { path: '/generate', body: { prompt: 'a cat' } },
  timeoutSeconds: 30,
  ...overrides,
});

/** `deliver: false`: the control plane never accepts the events (it is down, then the agent dies). */
async function setup(options: { deliver?: boolean } = {}) {
  const engine = new FakeEngine();
  const journal = await CommandJournal.open(join(dir, 'journal.json'));
  const events: AgentEvent[] = [];
  const runner = new TaskRunner({
    engine,
    journal,
    events: {
      send: (e, onDelivered) => {
        events.push(e);
        if (options.deliver !== false) void onDelivered?.();
      },
    },
    logger: silentLogger,
    readyPollMs: 20,
  });
  runners.push(runner);
  journals.push(journal);
  const finished = () =>
    new Promise<Extract<AgentEvent, { type: 'task.finished' }>>((resolve) => {
      const t = setInterval(() => {
        const f = events.find((e) => e.type === 'task.finished');
        if (f) {
          clearInterval(t);
          resolve(f as Extract<AgentEvent, { type: 'task.finished' }>);
        }
      }, 5);
    });
  return { engine, journal, events, runner, finished };
}

/** Until the model server got the task's request. */
const posted = () =>
  new Promise<void>((r) => {
    const t = setInterval(() => {
      if (seen.some((s) => s.method === 'POST')) {
        clearInterval(t);
        r();
      }
    }, 5);
  });

describe('TaskRunner', () => {
  it('starts the model server, waits for its port, posts the request, reports progress and files', async () => {
    // Prepare
    handler = (_req, _body, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          seed: 7,
          images: [{ name: 'out.png', contentType: 'image/png', base64: 'iVBORw0KGgo=' }],
        }),
      );
    const { engine, journal, events, runner, finished } = await setup();
    // Act
    const accepted = await runner.accept(command(), 'cmd-1');
    const done = await finished();
    // Assess
    expect(accepted).toEqual({ taskId: 'task-1', accepted: true, alreadyRunning: false });
    expect(done).toMatchObject({
      status: 'completed',
      result: { seed: 7 },
      files: [{ name: 'out.png', contentType: 'image/png', base64: 'iVBORw0KGgo=' }],
    });
    expect(done.result).not.toHaveProperty('images');
    const progress = events
      .filter((e) => e.type === 'task.progress')
      .map((e) => (e as { progress: number }).progress);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(100);
    const post = seen.find((s) => s.method === 'POST')!;
    expect(post.url).toBe('/generate');
    expect(JSON.parse(post.body)).toEqual({ prompt: 'a cat' });
    const server = [...engine.containers.values()][0]!;
    expect(server.kind).toBe('model');
    expect(server.labels[LABELS.model]).toBe('sdxl');
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.activeTasks()).toEqual([]);
  });

  it('reuses a running model server of the same model', async () => {
    handler = (_req, _body, res) => res.writeHead(200).end('{"ok":true}');
    const { engine, runner, finished } = await setup();
    engine.add({
      instanceId: 'other-instance',
      kind: 'model',
      ports: [{ containerPort: 8000, hostPort: port, protocol: 'tcp' }],
      labels: { [LABELS.model]: 'sdxl' },
    });
    await runner.accept(command(), 'cmd-1');
    expect((await finished()).status).toBe('completed');
    expect(engine.calls.some((c) => c.startsWith('createAndStart'))).toBe(false);
  });

  it('task.cancel aborts the request in flight', async () => {
    handler = () => undefined; // never answers
    const { runner, finished } = await setup();
    await runner.accept(command(), 'cmd-1');
    await posted();
    expect(runner.cancel('task-1')).toBe(true);
    const done = await finished();
    expect(done).toMatchObject({ status: 'cancelled', error: 'cancelled' });
    expect(runner.cancel('task-1')).toBe(false);
  });

  it('a cancel that arrives before its run: the run ends cancelled without a server or a request', async () => {
    // Prepare: commands to a node are not ordered; the cancel of run cmd-1 comes first.
    handler = (_req, _body, res) => res.writeHead(200).end('{"ok":true}');
    const { engine, journal, events, runner, finished } = await setup();
    expect(runner.cancel('task-1', 'cmd-1')).toBe(false);
    // Act
    const accepted = await runner.accept(command(), 'cmd-1');
    const done = await finished();
    // Assess
    expect(accepted).toEqual({ taskId: 'task-1', accepted: true, alreadyRunning: false });
    expect(done).toMatchObject({ status: 'cancelled', error: 'cancelled', runCommandId: 'cmd-1' });
    expect(events.filter((e) => e.type === 'task.progress')).toEqual([]);
    expect(engine.calls).toEqual([]);
    expect(seen).toEqual([]);
    expect(runner.isRunning('task-1')).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.activeTasks()).toEqual([]);
  });

  it('a cancel of an earlier run leaves the later run of the task running; its own cancel stops it', async () => {
    handler = () => undefined; // never answers
    const { runner, events, finished } = await setup();
    await runner.accept(command(), 'cmd-2');
    await posted();
    expect(runner.cancel('task-1', 'cmd-1')).toBe(false);
    expect(runner.isRunning('task-1')).toBe(true);
    expect(events.filter((e) => e.type === 'task.finished')).toEqual([]);
    expect(runner.cancel('task-1', 'cmd-2')).toBe(true);
    expect(await finished()).toMatchObject({ status: 'cancelled', runCommandId: 'cmd-2' });
  });

  it('a task past its deadline fails as timed out, and the request to the server is aborted', async () => {
    let aborted = false;
    handler = (req) => req.socket.once('close', () => (aborted = true)); // never answers
    const { runner, finished } = await setup();
    await runner.accept(command({ timeoutSeconds: 1 }), 'cmd-1');
    const done = await finished();
    expect(done).toMatchObject({ status: 'failed', error: 'timed out after 1 s' });
    await expect.poll(() => aborted).toBe(true);
  });

  it('reports failed with the status when the model server errors', async () => {
    handler = (_req, _body, res) => res.writeHead(500).end('CUDA out of memory');
    const { runner, finished } = await setup();
    await runner.accept(command(), 'cmd-1');
    expect(await finished()).toMatchObject({
      status: 'failed',
      error: 'model server answered 500: CUDA out of memory',
    });
  });

  it('reports tasks lost to a restart as failed, only when their command was recorded', async () => {
    const { journal, events, runner } = await setup();
    await journal.taskStarted('lost', 'cmd-done');
    await journal.record('cmd-done', 'task.run', { status: 'succeeded', output: {} });
    await journal.taskStarted('will-be-redelivered', 'cmd-unrecorded');
    expect(await runner.reportOrphans()).toBe(1);
    expect(events).toMatchObject([{ type: 'task.finished', taskId: 'lost', status: 'failed' }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.activeTasks()).toEqual([]);
  });

  it('keeps a finished task in flight until its task.finished is delivered; a restart reports it, never runs it again', async () => {
    // Prepare: the task completes while nothing is delivered (the control plane is down)
    handler = (_req, _body, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ seed: 7 }));
    const first = await setup({ deliver: false });
    await first.runner.accept(command(), 'cmd-1');
    await first.journal.record('cmd-1', 'task.run', { status: 'succeeded', output: {} });
    expect(await first.finished()).toMatchObject({ status: 'completed' });
    await new Promise((r) => setTimeout(r, 20));
    expect(first.journal.activeTasks()).toMatchObject([
      { taskId: 'task-1', commandId: 'cmd-1', outcome: { status: 'completed' } },
    ]);
    // Act: the agent restarts on the same journal (its queued event died with it)
    await first.journal.flush();
    const second = await setup();
    const posts = seen.filter((s) => s.method === 'POST').length;
    expect(await second.runner.reportOrphans()).toBe(1);
    // Assess: reported once, saying what happened; not run again; gone from the journal once delivered
    expect(second.events).toEqual([
      expect.objectContaining({
        type: 'task.finished',
        taskId: 'task-1',
        status: 'failed',
        error: expect.stringMatching(/completed, but the agent restarted before it delivered the result/),
      }),
    ]);
    expect(seen.filter((s) => s.method === 'POST')).toHaveLength(posts);
    await new Promise((r) => setTimeout(r, 20));
    expect(second.journal.activeTasks()).toEqual([]);
  });
});

describe('splitModelResponse', () => {
  it('keeps non-image answers whole', () => {
    expect(splitModelResponse({ text: 'hi' })).toEqual({ result: { text: 'hi' }, files: [] });
    expect(splitModelResponse([1, 2])).toEqual({ result: { value: [1, 2] }, files: [] });
    expect(splitModelResponse({ images: ['not-a-file'] })).toEqual({
      result: { images: ['not-a-file'] },
      files: [],
    });
  });
});
