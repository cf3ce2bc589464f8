import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import { realtimeKeys } from '../../../functions/core/keys.js';
import type { AppContext } from '../../../functions/core/context.js';
import { GoneConnectionError, type ConnectionSender } from '../../../functions/ports/connections.js';
import {
  broadcast,
  channelConnections,
  getConnection,
  saveConnection,
} from '../../../functions/realtime/connections.js';
import { notifyNodeLog } from '../../../functions/realtime/session.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

/** Records what was sent; `gone` ids answer GoneConnectionError, `broken` ids a transient error. */
class FakeSender implements ConnectionSender {
  readonly sent: { connectionId: string; data: string }[] = [];
  constructor(
    readonly gone: Set<string>,
    readonly broken: Set<string>,
  ) {}
  async send(connectionId: string, data: string): Promise<void> {
    if (this.gone.has(connectionId)) throw new GoneConnectionError(connectionId);
    if (this.broken.has(connectionId)) throw new Error('socket hang up');
    this.sent.push({ connectionId, data });
  }
  async close(): Promise<void> {}
}

describe('WebSocket fan-out (dynalite table, fake sender)', () => {
  let ctx: AppContext;
  let stop: () => Promise<void>;
  let sender: FakeSender;
  beforeAll(async () => {
    const embedded = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT' }), {});
    ctx = embedded.ctx;
    stop = embedded.stop;
    sender = new FakeSender(new Set(['gone-1']), new Set(['broken-1']));
    ctx.connections = sender;
  });
  afterAll(async () => stop?.());

  it('delivers to every connection of the channel, removes the gone one and keeps a transient failure', async () => {
    // Arrange
    for (const id of ['ok-1', 'gone-1', 'broken-1']) await saveConnection(ctx, id, { channel: 'metrics' });
    await saveConnection(ctx, 'doctor-1', { channel: 'doctor' });
    // Act
    const out = await broadcast(ctx, 'metrics', { type: 'metrics', n: 1 });
    // Assert
    expect(out).toEqual({ delivered: 1, pruned: 1 });
    expect(sender.sent).toEqual([{ connectionId: 'ok-1', data: '{"type":"metrics","n":1}' }]);
    expect(await getConnection(ctx, 'gone-1')).toBeUndefined();
    expect(await getConnection(ctx, 'broken-1')).toMatchObject({ channel: 'metrics' });
    expect((await channelConnections(ctx, 'metrics')).map((c) => c.connectionId).sort()).toEqual(['broken-1', 'ok-1']);
  });

  it('builds a lazy frame only when the channel has listeners', async () => {
    let built = 0;
    const out = await broadcast(ctx, 'logs#nobody', async () => {
      built++;
      return {};
    });
    expect(out).toEqual({ delivered: 0, pruned: 0 });
    expect(built).toBe(0);
  });

  it("sends a node's log line to that node's subscribers only, never throwing on a failed send", async () => {
    await saveConnection(ctx, 'logs-a', { channel: 'logs', nodeId: 'node-a' });
    await saveConnection(ctx, 'logs-b', { channel: 'logs', nodeId: 'node-b' });
    sender.broken.add('logs-b');
    const before = sender.sent.length;
    await notifyNodeLog(ctx, 'node-a', 'info', 'Container x started');
    await expect(notifyNodeLog(ctx, 'node-b', 'info', 'ignored')).resolves.toBeUndefined();
    const got = sender.sent.slice(before);
    expect(got.map((s) => s.connectionId)).toEqual(['logs-a']);
    expect(JSON.parse(got[0]!.data)).toMatchObject({ type: 'log', node_id: 'node-a', level: 'info', message: 'Container x started' });
  });

  it('ignores expired records (TTL deletion lags)', async () => {
    const item = await saveConnection(ctx, 'old-1', { channel: 'doctor' });
    const expiresAt = Math.floor(ctx.now() / 1000) - 1;
    await ctx.store.put({ ...item, ...realtimeKeys.channelIndex('doctor', 'old-1', expiresAt), expiresAt });
    expect((await channelConnections(ctx, 'doctor')).map((c) => c.connectionId)).toEqual(['doctor-1']);
  });
});
