import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../../protocol/messages.js';
import { EventReporter } from '../../../agent/events.js';
import { silentLogger } from '../../../agent/log.js';

const progress = (taskId: string, p: number): AgentEvent => ({
  type: 'task.progress',
  taskId,
  progress: p,
  at: 'now',
});

describe('EventReporter', () => {
  it('keeps events through an outage, delivers them in order, then runs the delivery hooks', async () => {
    // Prepare
    let down = 2;
    const posted: AgentEvent[][] = [];
    const delivered: string[] = [];
    const reporter = new EventReporter({
      logger: silentLogger,
      backoff: { baseMs: 1, maxMs: 5 },
      post: async (events) => {
        if (down-- > 0) throw new Error('ECONNREFUSED');
        posted.push(events);
      },
    });
    const controller = new AbortController();
    const running = reporter.run(controller.signal);
    // Act
    reporter.send(progress('a', 1), () => void delivered.push('a'));
    reporter.send(progress('b', 2), () => void delivered.push('b'));
    await expect.poll(() => reporter.pending).toBe(0);
    controller.abort();
    await running;
    // Assess
    expect(posted.flat().map((e) => (e as { taskId: string }).taskId)).toEqual(['a', 'b']);
    expect(delivered).toEqual(['a', 'b']);
  });

  it('when full, drops progress before anything that matters', () => {
    const reporter = new EventReporter({ logger: silentLogger, maxQueued: 2, post: async () => undefined });
    reporter.send({
      type: 'container.exited',
      instanceId: 'i',
      kind: 'run',
      exitCode: 1,
      logTail: '',
      at: 'now',
    });
    reporter.send(progress('t', 10));
    reporter.send({ type: 'task.finished', taskId: 't', status: 'completed', files: [], at: 'now' });
    expect(reporter.pending).toBe(2);
  });
});
