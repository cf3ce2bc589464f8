import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandJournal } from '../../../agent/journal.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CommandJournal', () => {
  it('remembers results across a reopen (agent restart)', async () => {
    // Prepare
    const path = join(dir, 'journal.json');
    const first = await CommandJournal.open(path);
    // Act
    await first.record('cmd-1', 'container.start', { status: 'succeeded', output: { containerId: 'c1' } });
    await first.markReported('cmd-1');
    await first.recordExit('c1@2026-01-01T00:00:00Z');
    await first.taskStarted('task-1', 'cmd-2');
    const second = await CommandJournal.open(path);
    // Assess
    expect(second.get('cmd-1')).toMatchObject({
      type: 'container.start',
      reported: true,
      result: { status: 'succeeded', output: { containerId: 'c1' } },
    });
    expect(second.get('cmd-unknown')).toBeUndefined();
    expect(second.hasExit('c1@2026-01-01T00:00:00Z')).toBe(true);
    expect(second.activeTasks()).toMatchObject([{ taskId: 'task-1', commandId: 'cmd-2' }]);
  });

  it('remembers a command begun without a result across a reopen, until its result is recorded', async () => {
    const path = join(dir, 'journal.json');
    const first = await CommandJournal.open(path);
    await first.begin('cmd-1', 'container.restart');
    await first.begin('cmd-2', 'container.stop');
    await first.record('cmd-2', 'container.stop', { status: 'succeeded', output: {} });
    const second = await CommandJournal.open(path);
    expect(second.begun('cmd-1')).toMatchObject({ commandId: 'cmd-1', type: 'container.restart' });
    expect(second.begun('cmd-2')).toBeUndefined();
    await second.record('cmd-1', 'container.restart', { status: 'succeeded', output: {} });
    expect((await CommandJournal.open(path)).begun('cmd-1')).toBeUndefined();
  });

  it('writes atomically: no temp files left, content is whole JSON after concurrent records', async () => {
    const path = join(dir, 'journal.json');
    const j = await CommandJournal.open(path);
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        j.record(`cmd-${i}`, 'container.stop', { status: 'succeeded', output: {} }),
      ),
    );
    const files = await readdir(dir);
    expect(files).toEqual(['journal.json']);
    const data = JSON.parse(await readFile(path, 'utf8')) as { commands: unknown[] };
    expect(data.commands).toHaveLength(25);
  });

  it('stays small: forgets the oldest commands beyond maxCommands', async () => {
    const j = await CommandJournal.open(join(dir, 'journal.json'), { maxCommands: 3 });
    for (const id of ['a', 'b', 'c', 'd'])
      await j.record(id, 'container.logs', { status: 'succeeded', output: {} });
    expect(j.get('a')).toBeUndefined();
    expect(j.get('d')).toBeDefined();
  });

  it('drops a big output once the control plane has it, keeping the outcome', async () => {
    const path = join(dir, 'journal.json');
    const j = await CommandJournal.open(path);
    const big = { stdout: 'x'.repeat(10_000), exitStatus: 0 };
    await j.record('exec-1', 'host.exec', { status: 'succeeded', output: big });
    await j.record('stop-1', 'container.stop', { status: 'succeeded', output: { found: true } });
    // Not reported yet: a redelivery must report the real output.
    expect(j.get('exec-1')!.result.output).toEqual(big);
    await j.markReported('exec-1');
    await j.markReported('stop-1');
    const reopened = await CommandJournal.open(path);
    expect(reopened.get('exec-1')).toMatchObject({
      reported: true,
      outputDropped: true,
      result: { status: 'succeeded', output: {} },
    });
    expect(reopened.get('stop-1')!.result.output).toEqual({ found: true });
    expect((await readFile(path, 'utf8')).includes('xxxx')).toBe(false);
  });

  it('sets a corrupt journal aside and starts empty rather than refusing to start', async () => {
    const path = join(dir, 'journal.json');
    await writeFile(path, '{"version": 1, "commands": [tru');
    let asidePath = '';
    const j = await CommandJournal.open(path, { onCorrupt: (p) => (asidePath = p) });
    expect(j.get('x')).toBeUndefined();
    expect(asidePath).toMatch(/journal\.json\.corrupt-/);
    expect((await readdir(dir)).some((f) => f.startsWith('journal.json.corrupt-'))).toBe(true);
  });
  it("keeps a task's outcome across a reopen until its delivery ends it, and only that run's delivery", async () => {
    const path = join(dir, 'journal.json');
    const first = await CommandJournal.open(path);
    await first.taskStarted('task-1', 'cmd-1');
    await first.taskFinished('task-1', 'cmd-1', { status: 'failed', error: 'model server answered 500' });
    const second = await CommandJournal.open(path);
    expect(second.activeTasks()).toMatchObject([
      {
        taskId: 'task-1',
        commandId: 'cmd-1',
        outcome: { status: 'failed', error: 'model server answered 500' },
      },
    ]);
    // A later run of the same task: the first run's delivery no longer ends it.
    await second.taskStarted('task-1', 'cmd-2');
    await second.taskEnded('task-1', 'cmd-1');
    expect(second.activeTasks()).toMatchObject([{ taskId: 'task-1', commandId: 'cmd-2' }]);
    await second.taskEnded('task-1', 'cmd-2');
    expect((await CommandJournal.open(path)).activeTasks()).toEqual([]);
  });
});
