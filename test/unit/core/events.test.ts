/**
 * The events function's two shapes of input: an SQS batch (failed records reported back) and one
 * event delivered straight to it by a schedule that targets the function (a failure throws, so
 * Lambda retries it and then sends it to the dead-letter queue).
 */
import { describe, expect, it } from 'vitest';
import type { SQSRecord } from 'aws-lambda';
import type { AppContext } from '../../../functions/core/context.js';
import { processDirectEvent, processEventBatch, type EventHandler } from '../../../functions/core/events.js';

function rig() {
  const logged: { level: string; message: string }[] = [];
  const log = (level: string) => (message: string) => void logged.push({ level, message });
  const ctx = {
    logger: { error: log('error'), warn: log('warn'), info: log('info') },
  } as unknown as AppContext;
  const seen: unknown[] = [];
  const handlers: Record<string, EventHandler> = {
    'ok.event': async (event) => void seen.push(event),
    'bad.event': () => Promise.reject(new Error('the handler failed')),
  };
  return { ctx, logged, seen, handlers };
}

const record = (messageId: string, body: string) => ({ messageId, body }) as SQSRecord;

describe('events function input', () => {
  it('runs a directly delivered event, drops a malformed one loudly and throws what its handler throws', async () => {
    const { ctx, logged, seen, handlers } = rig();
    await processDirectEvent({ type: 'ok.event', at: 60_000 }, 'req-1', handlers, ctx);
    expect(seen).toEqual([{ type: 'ok.event', at: 60_000 }]);
    // Neither can ever succeed: retrying them would only fill the dead-letter queue.
    await processDirectEvent({ kind: 'no type' }, 'req-2', handlers, ctx);
    await processDirectEvent({ type: 'unknown.event' }, 'req-3', handlers, ctx);
    expect(logged.map((l) => `${l.level} ${l.message}`)).toEqual([
      'error dropping malformed event',
      'warn no handler for event type',
    ]);
    await expect(processDirectEvent({ type: 'bad.event' }, 'req-4', handlers, ctx)).rejects.toThrow(
      'the handler failed',
    );
    expect(logged.at(-1)).toEqual({ level: 'error', message: 'event failed' });
  });

  it('reports only the failed records of a batch, a body that is not JSON among them', async () => {
    const { ctx, seen, handlers } = rig();
    const out = await processEventBatch(
      {
        Records: [
          record('m1', JSON.stringify({ type: 'ok.event' })),
          record('m2', JSON.stringify({ type: 'bad.event' })),
          record('m3', '{not json'),
        ],
      },
      handlers,
      ctx,
    );
    expect(seen).toEqual([{ type: 'ok.event' }]);
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: 'm2' }, { itemIdentifier: 'm3' }]);
  });
});
