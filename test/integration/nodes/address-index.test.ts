import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys, nodeAddressKeys } from '../../../functions/core/keys.js';
import {
  ensureIndexed,
  firstJetson,
  jetsonNamed,
  nodeAt,
  pickOnlineNode,
} from '../../../functions/nodes/address-index.js';
import { registerNode } from '../../../functions/nodes/registration.js';
import { parseCidr } from '../../../protocol/network.js';
import type { RegisterRequest } from '../../../protocol/messages.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

const JETSON = { l4t: '35.3.1', jetpack: '5.1.1', cuda: '11.4', cudnn: '8.6', model: 'Jetson AGX Xavier' };

/**
 * The address index (functions/nodes/address-index.ts) follows the registry: registration writes
 * a node's addresses (and a Jetson's names), a new address replaces the old, a node that stops
 * being a Jetson leaves the Jetson entries, deletion removes them all, and nodes registered
 * before the index get theirs from the upgrade pass. Embedded runtime.
 */
describe('address index (embedded runtime)', () => {
  let rt: Runtime;
  const body = (name: string, over: Partial<RegisterRequest>): RegisterRequest => ({
    ...new ScriptedAgent('http://unused', name).registerBody(),
    ...over,
  });
  const jetsons = async () =>
    (await rt.ctx.store.query(nodeAddressKeys.jetsonsPk)).items.map((i) => i.sk);

  beforeAll(async () => {
    rt = await startRuntime({
      port: 0,
      env: { ...process.env, AWS_ENDPOINT_URL: undefined, LOG_LEVEL: 'SILENT' },
    });
  });
  afterAll(async () => {
    await rt?.stop();
  });

  it('registration indexes addresses and a Jetson’s names; a subnet pick finds the node by address', async () => {
    const ctx = rt.ctx;
    const agx = await registerNode(ctx, body('agx-a', { addresses: ['192.168.7.10'], jetson: JETSON }));
    const gpu = await registerNode(ctx, body('gpu-b', { addresses: ['192.168.7.20', 'fd00::20'] }));
    expect(await nodeAt(ctx, '192.168.7.10')).toBe(true);
    expect(await nodeAt(ctx, '192.168.7.10', true)).toBe(true);
    expect(await nodeAt(ctx, '192.168.7.20')).toBe(true);
    expect(await nodeAt(ctx, '192.168.7.20', true)).toBe(false);
    expect(await nodeAt(ctx, 'FD00::20')).toBe(true);
    expect(await nodeAt(ctx, '192.168.7.30')).toBe(false);
    // The node name and its host name (agx-a.local), short and lowercased.
    expect(await jetsonNamed(ctx, 'AGX-A.lan')).toBe(true);
    expect(await jetsonNamed(ctx, 'gpu-b')).toBe(false);
    expect(await jetsons()).toEqual(['agx-a']);
    expect((await firstJetson(ctx))?.nodeId).toBe(agx.node.nodeId);

    const subnet = parseCidr('192.168.7.0/24');
    expect((await pickOnlineNode(ctx, { subnet }))?.nodeId).toBe(agx.node.nodeId);
    const other = await pickOnlineNode(ctx, { subnet, accept: (n) => n.nodeId !== agx.node.nodeId });
    expect(other?.nodeId).toBe(gpu.node.nodeId);
    // Outside the subnet: an online node from the eligible-node index.
    expect(await pickOnlineNode(ctx, { subnet: parseCidr('10.9.9.0/24') })).toBeDefined();
  });

  it('a new address replaces the old; a node no longer a Jetson leaves the Jetson entries', async () => {
    const ctx = rt.ctx;
    await registerNode(ctx, body('agx-a', { addresses: ['192.168.8.10'], jetson: JETSON }));
    expect(await nodeAt(ctx, '192.168.7.10')).toBe(false);
    expect(await nodeAt(ctx, '192.168.8.10', true)).toBe(true);
    await registerNode(ctx, body('agx-a', { addresses: ['192.168.8.10'], jetson: null }));
    expect(await nodeAt(ctx, '192.168.8.10')).toBe(true);
    expect(await nodeAt(ctx, '192.168.8.10', true)).toBe(false);
    expect(await jetsonNamed(ctx, 'agx-a')).toBe(false);
    expect(await jetsons()).toEqual([]);
    expect(await firstJetson(ctx)).toBeUndefined();
  });

  it('deleting a node removes its entries', async () => {
    const ctx = rt.ctx;
    await registerNode(ctx, body('agx-a', { addresses: ['192.168.8.10'], jetson: JETSON }));
    const res = await call(rt.url, 'DELETE', '/api/nodes/agx-a');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await nodeAt(ctx, '192.168.8.10')).toBe(false);
    expect(await jetsonNamed(ctx, 'agx-a')).toBe(false);
    expect(await jetsons()).toEqual([]);
    expect(await nodeAt(ctx, '192.168.7.20')).toBe(true);
  });

  it('nodes registered before the index get their entries from the upgrade pass, once', async () => {
    const ctx = rt.ctx;
    // A node as an older release left it: META on the node index, no entries.
    const nodeId = 'old-xavier-0001';
    await ctx.store.put({
      ...keys.node(nodeId),
      ...keys.nodesIndex('old-xavier'),
      nodeId,
      nodeName: 'old-xavier',
      hostname: 'old-xavier',
      addresses: ['192.168.9.5'],
      jetson: JETSON,
      tokenHash: 'x',
      registeredAt: new Date().toISOString(),
      status: 'offline',
      loadedModels: [],
      containerStats: {},
    });
    expect(await nodeAt(ctx, '192.168.9.5')).toBe(false);
    const marker = nodeAddressKeys.indexed;
    await ctx.store.delete(marker.pk, marker.sk);
    expect(await ensureIndexed(ctx)).toBe(true);
    expect(await nodeAt(ctx, '192.168.9.5', true)).toBe(true);
    expect(await jetsons()).toEqual(['old-xavier']);
    // The jetpack route answers it (offline, the only Jetson).
    const jp = await call(rt.url, 'GET', '/api/nodes/jetpack');
    expect(jp.status).toBe(200);
    expect(jp.body).toMatchObject({ node_id: nodeId, jetpack_version: '5.1.1' });
    expect(await ctx.store.get(marker.pk, marker.sk)).toMatchObject({ done: true });
  });
});
