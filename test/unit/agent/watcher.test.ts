import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LABELS, type AgentEvent } from '../../../protocol/messages.js';
import { CommandJournal } from '../../../agent/journal.js';
import { silentLogger } from '../../../agent/log.js';
import { ExitWatcher } from '../../../agent/watcher.js';
import { FakeEngine } from './fake-engine.js';

let dir: string;
// Journal writes a test set off (deliveries) must land before its folder goes.
let inFlight: Promise<unknown>[] = [];
let journals: CommandJournal[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-watch-'));
  inFlight = [];
  journals = [];
});
afterEach(async () => {
  await Promise.allSettled(inFlight);
  await Promise.allSettled(journals.map((j) => j.flush()));
  await rm(dir, { recursive: true, force: true });
});

async function openJournal(): Promise<CommandJournal> {
  const journal = await CommandJournal.open(join(dir, 'journal.json'));
  journals.push(journal);
  return journal;
}

async function setup(engine = new FakeEngine()) {
  const journal = await openJournal();
  const events: AgentEvent[] = [];
  // Delivered at once, as when the control plane accepts the POST.
  const send = (e: AgentEvent, onDelivered?: () => Promise<void> | void): void => {
    events.push(e);
    inFlight.push(Promise.resolve(onDelivered?.()));
  };
  const watcher = new ExitWatcher({ engine, journal, events: { send }, logger: silentLogger });
  return { engine, journal, events, watcher };
}

describe('ExitWatcher', () => {
  it('reports an exited run with its exit code and log tail, once', async () => {
    // Prepare
    const { engine, events, watcher } = await setup();
    const c = engine.add({ instanceId: 'run-1', kind: 'run', labels: { [LABELS.kind]: 'run' } });
    engine.logText.set(c.id, 'epoch 3\nloss nan\n');
    engine.exit(c.id, 1, '2026-01-01T00:00:05Z');
    // Act
    await watcher.reconcile();
    await watcher.reconcile();
    // Assess
    expect(events).toEqual([
      {
        type: 'container.exited',
        instanceId: 'run-1',
        kind: 'run',
        exitCode: 1,
        logTail: 'epoch 3\nloss nan\n',
        at: '2026-01-01T00:00:05Z',
      },
    ]);
    expect(engine.calls).toContain(`logs ${c.id} 50`);
  });

  it('does not report again after an agent restart (journal), but does report a new exit of the same container', async () => {
    const engine = new FakeEngine();
    const first = await setup(engine);
    const c = engine.add({ instanceId: 'svc-1' });
    engine.exit(c.id, 0, '2026-01-01T00:00:00Z');
    await first.watcher.reconcile();
    await first.journal.flush();
    const second = await setup(engine);
    await second.watcher.reconcile();
    expect(second.events).toEqual([]);
    engine.exit(c.id, 2, '2026-01-01T00:10:00Z'); // restarted and died again
    await second.watcher.reconcile();
    expect(second.events).toMatchObject([{ instanceId: 'svc-1', exitCode: 2 }]);
  });

  it('journals an exit only once delivered, so an exit lost in a crash is sent again', async () => {
    const engine = new FakeEngine();
    const journal = await openJournal();
    const sent: AgentEvent[] = [];
    const undelivered = new ExitWatcher({
      engine,
      journal,
      events: { send: (e) => sent.push(e) },
      logger: silentLogger,
    });
    const c = engine.add({ instanceId: 'svc-1' });
    engine.exit(c.id, 1);
    await undelivered.reconcile();
    await undelivered.reconcile(); // pending: not sent twice by this process
    expect(sent).toHaveLength(1);
    expect(journal.hasExit(`${c.id}@${engine.containers.get(c.id)!.finishedAt}`)).toBe(false);
    const after = await setup(engine);
    await after.watcher.reconcile();
    expect(after.events).toHaveLength(1);
  });

  it('stays quiet about exits the agent caused and about model servers', async () => {
    const { engine, events, watcher } = await setup();
    const stopped = engine.add({ instanceId: 'svc-1' });
    const model = engine.add({ instanceId: 'm-1', kind: 'model' });
    watcher.expectExit(stopped.id);
    engine.exit(stopped.id, 137);
    engine.exit(model.id, 1);
    await watcher.reconcile();
    expect(events).toEqual([]);
  });
});
