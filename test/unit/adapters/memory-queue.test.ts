import { describe, expect, it } from 'vitest';
import { MemoryQueue } from '../../../functions/adapters/memory-queue.js';

describe('MemoryQueue', () => {
  it('hides a received message until its visibility timeout passes, then redelivers it', async () => {
    let now = 1_000_000;
    const q = new MemoryQueue(() => now);
    await q.ensure({ name: 'q', visibilityTimeoutSeconds: 30 });
    await q.send('q', 'hello');
    const [first] = await q.receive('q');
    expect(first).toMatchObject({ body: 'hello', receiveCount: 1 });
    expect(await q.receive('q')).toEqual([]);
    now += 31_000;
    const [again] = await q.receive('q');
    expect(again).toMatchObject({ messageId: first!.messageId, receiveCount: 2 });
    await q.delete('q', again!.receiptHandle);
    now += 31_000;
    expect(await q.receive('q')).toEqual([]);
  });

  it('releases what is in flight at once (a node whose agent restarted), leaving delayed messages delayed', async () => {
    let now = 1_000_000;
    const q = new MemoryQueue(() => now);
    await q.ensure({ name: 'q', visibilityTimeoutSeconds: 120 });
    await q.send('q', 'taken');
    await q.send('q', 'later', { delaySeconds: 60 });
    const [taken] = await q.receive('q');
    expect(taken?.body).toBe('taken');
    expect(await q.receive('q')).toEqual([]);
    expect(await q.releaseInFlight('q')).toBe(1);
    const [again] = await q.receive('q');
    expect(again).toMatchObject({ messageId: taken!.messageId, receiveCount: 2 });
    // The old receipt no longer deletes it; the new one does.
    await q.delete('q', taken!.receiptHandle);
    expect(q.depth('q')).toBe(2);
    await q.delete('q', again!.receiptHandle);
    expect(await q.releaseInFlight('q')).toBe(0);
    now += 61_000;
    expect((await q.receive('q')).map((m) => m.body)).toEqual(['later']);
  });

  it('moves a message to the dead-letter queue after maxReceiveCount receives', async () => {
    let now = 0;
    const q = new MemoryQueue(() => now);
    await q.ensure({ name: 'q', visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
    await q.send('q', 'poison');
    expect(await q.receive('q')).toHaveLength(1);
    now += 2000;
    expect(await q.receive('q')).toHaveLength(1);
    now += 2000;
    expect(await q.receive('q')).toEqual([]);
    const [dead] = await q.receive('q-dlq');
    expect(dead?.body).toBe('poison');
  });

  it('long-polls until a message arrives', async () => {
    const q = new MemoryQueue();
    const started = Date.now();
    const pending = q.receive('q', { waitSeconds: 5 });
    setTimeout(() => void q.send('q', 'late'), 100);
    const got = await pending;
    expect(got.map((m) => m.body)).toEqual(['late']);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('returns empty when the wait ends or the receive is aborted', async () => {
    const q = new MemoryQueue();
    expect(await q.receive('q', { waitSeconds: 0.2 })).toEqual([]);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    expect(await q.receive('q', { waitSeconds: 10, signal: abort.signal })).toEqual([]);
  });

  it('delays messages sent with a delay', async () => {
    let now = 0;
    const q = new MemoryQueue(() => now);
    await q.send('q', 'later', { delaySeconds: 10 });
    expect(await q.receive('q')).toEqual([]);
    now += 10_000;
    expect((await q.receive('q'))[0]?.body).toBe('later');
  });
});
